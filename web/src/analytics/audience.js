// Audience: where the listeners are (a world map coloured by the chosen platform's figure per
// country, with the top cities) and who they are (age bands, genders), from the sources that
// report them. Figures of different platforms are never summed: one platform at a time.
import { Chart, Tooltip } from 'chart.js'
import { ChoroplethController, ColorScale, GeoFeature, ProjectionScale, topojson } from 'chartjs-chart-geo'
import world from 'world-atlas/countries-110m.json'
import { h } from '../dom.js'
import { formatNumber } from './format.js'

Chart.register(ChoroplethController, GeoFeature, ColorScale, ProjectionScale, Tooltip)

const COUNTRIES = topojson.feature(world, world.objects.countries).features
  .filter((f) => f.properties.name !== 'Antarctica')
const percent = (share) => `${(share * 100).toFixed(1)}%`

function shareTable (id, caption, rows) {
  if (!rows.length) return h('p', { class: 'empty', id: `${id}-none` }, `${caption}: not reported by this platform.`)
  return h('table', { class: 'data', id },
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, ...['', 'Figure', 'Share'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...rows.slice(0, 10).map((r) => h('tr', { dataset: { key: r.key } },
      h('td', {}, r.name || r.key), h('td', { class: 'num' }, formatNumber(r.value)),
      h('td', { class: 'num' }, percent(r.share))))))
}

/** {element, render(from, to, entity)}; the map's Chart is window.analyticsMap. */
export function audiencePanel ({ api, titles }) {
  const choice = h('select', { name: 'audience-platform', id: 'audience-platform' })
  const canvas = h('canvas', { id: 'audience-map', role: 'img', 'aria-label': 'Listeners by country' })
  const mapBox = h('div', { class: 'map-box' }, canvas)
  const tables = h('div', { class: 'audience-tables' })
  const empty = h('p', { class: 'empty', id: 'no-audience', hidden: true },
    'No audience figures in this range: Shazam, Boomplay and statements report countries once connected and back-filled.')
  let answers = []
  let chart = null

  function draw () {
    const entry = answers[Number(choice.value)] || answers[0]
    const byNumeric = new Map(entry.countries.filter((c) => c.numeric).map((c) => [c.numeric, c]))
    const data = COUNTRIES.map((feature) => ({ feature, value: byNumeric.get(String(feature.id))?.value ?? 0 }))
    const label = `${titles.get(entry.source) || entry.source}: ${entry.metric}`
    if (chart) chart.destroy()
    chart = new Chart(canvas, {
      type: 'choropleth',
      data: { labels: COUNTRIES.map((f) => f.properties.name), datasets: [{ label, data, outline: COUNTRIES }] },
      options: {
        animation: false,
        showOutline: true,
        plugins: { legend: { display: false } },
        scales: {
          projection: { axis: 'x', projection: 'equalEarth' },
          color: { axis: 'x', interpolate: 'blues', missing: '#20232a', legend: { position: 'bottom-right' } }
        }
      }
    })
    window.analyticsMap = chart
    tables.replaceChildren(shareTable('audience-countries', 'Countries', entry.countries),
      shareTable('audience-cities', 'Cities', entry.cities),
      shareTable('audience-ages', 'Age', entry.ages),
      shareTable('audience-genders', 'Gender', entry.genders))
  }
  choice.addEventListener('change', draw)

  async function render (from, to, entity) {
    answers = await api().audience(from, to, entity)
    empty.hidden = answers.length > 0
    mapBox.hidden = !answers.length
    choice.parentElement.hidden = !answers.length
    if (!answers.length) {
      tables.replaceChildren()
      return
    }
    const kept = Math.min(Number(choice.value) || 0, answers.length - 1)
    choice.replaceChildren(...answers.map((a, i) => h('option', { value: String(i), selected: i === kept },
      `${titles.get(a.source) || a.source}: ${a.metric}`)))
    draw()
  }

  const element = h('section', { class: 'panel', 'aria-labelledby': 'audience-title' },
    h('h2', { id: 'audience-title' }, 'Audience'),
    h('label', { class: 'field', for: 'audience-platform' }, h('span', {}, 'Platform and figure'), choice),
    empty, mapBox, tables)
  return { element, render }
}
