// A QR code drawn as SVG in the page (uqr encodes; nothing leaves the browser), for the
// otpauth:// link an authenticator app scans.
import { encode } from 'uqr'

const SVG = 'http://www.w3.org/2000/svg'
/** Light modules around the code, as the QR specification asks (ISO/IEC 18004: 4). */
const QUIET = 4

/** The dark modules of `text` as a QR code: {size, dark: [[x, y], ...]} (error correction M). */
export function qrModules (text) {
  const { size, data } = encode(text, { ecc: 'M', border: 0 })
  const dark = []
  data.forEach((row, y) => row.forEach((on, x) => { if (on) dark.push([x, y]) }))
  return { size, dark }
}

/** An <svg role="img"> of `text` as a QR code, one path of unit squares, `pixels` wide. */
export function qrCode (text, { label = 'QR code', pixels = 196 } = {}) {
  const { size, dark } = qrModules(text)
  const side = size + 2 * QUIET
  const svg = document.createElementNS(SVG, 'svg')
  const set = (el, attrs) => { for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v) }
  set(svg, {
    class: 'qr', role: 'img', 'aria-label': label, viewBox: `${-QUIET} ${-QUIET} ${side} ${side}`,
    width: pixels, height: pixels, 'shape-rendering': 'crispEdges', 'data-modules': size
  })
  const background = document.createElementNS(SVG, 'rect')
  set(background, { x: -QUIET, y: -QUIET, width: side, height: side, fill: '#fff' })
  const path = document.createElementNS(SVG, 'path')
  set(path, { fill: '#000', d: dark.map(([x, y]) => `M${x} ${y}h1v1h-1z`).join('') })
  svg.append(background, path)
  return svg
}
