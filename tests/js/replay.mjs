// Stock yjs reading updates, for the integrity tests (one JSON document on stdin).
//
// {"each": [hex, ...]}      decode and apply each update to a fresh Y.Doc on its own;
//                           replies {"each": [null | "error message", ...]}
// {"sequence": [hex, ...], "maps": [name, ...]}
//                           apply all of them, in order, to one Y.Doc; replies
//                           {"errors": [...], "document": {map name: JSON}} for the
//                           root maps named (the document schema's roots)
import * as Y from 'yjs'

const bytes = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'))
const attempt = (doc, hex) => {
  try {
    Y.applyUpdate(doc, bytes(hex))
    return null
  } catch (err) {
    return String(err && err.message ? err.message : err)
  }
}

let input = ''
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  const job = JSON.parse(input)
  if (job.each) {
    process.stdout.write(JSON.stringify({ each: job.each.map((hex) => attempt(new Y.Doc(), hex)) }))
    return
  }
  const doc = new Y.Doc()
  const errors = job.sequence.map((hex) => attempt(doc, hex)).filter((e) => e !== null)
  const document = {}
  for (const name of job.maps) document[name] = doc.getMap(name).toJSON()
  process.stdout.write(JSON.stringify({ errors, document }))
})
