// Benchmarking: the chosen artist's KPIs against peers (named by the person, or the
// account's artists of a similar size), as percentile ranks in a bar chart and a table with
// the peers' quartiles; then its percentile within each of its genres (the account's artists
// of that genre), with the genres editable.
import { BarController, BarElement, CategoryScale, Chart, LinearScale, Tooltip } from 'chart.js'
import { h } from '../dom.js'
import { formatNumber } from './format.js'
import { KPI_ORDER, KPI_TITLES } from './kpis.js'

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip)

const fmt = (v) => (v === null || v === undefined ? '–' : formatNumber(v))

/** {element, render(from, to, entity, artists)}: `entity` if an artist, else the first; the Chart is window.analyticsBenchmark. */
export function benchmarkPanel ({ api, say }) {
  const peers = h('select', { name: 'peers', id: 'benchmark-peers', multiple: true, size: 4 })
  const body = h('div', {})
  const genreInput = h('input', { id: 'artist-genres', name: 'genres', type: 'text', placeholder: 'indie pop, electronic' })
  const genreSave = h('button', { type: 'button', id: 'save-genres' }, 'Save genres')
  const byGenre = h('div', { id: 'benchmark-genres' })
  const canvas = h('canvas', { id: 'benchmark-chart', role: 'img', 'aria-label': 'Percentile rank per KPI' })
  let chart = null
  let last = null

  async function render (from, to, entity, artists) {
    last = { from, to, entity, artists }
    // the chosen entity when it is an artist, else the first artist
    const artist = artists.find((a) => a.entity_id === entity) || artists[0]
    entity = artist ? artist.entity_id : entity
    const chosen = new Set([...peers.selectedOptions].map((o) => o.value))
    peers.replaceChildren(...artists.filter((a) => a.entity_id !== entity).map((a) =>
      h('option', { value: a.entity_id, selected: chosen.has(a.entity_id) }, a.name || a.entity_id)))
    if (!artist) {
      body.replaceChildren(h('p', { class: 'empty', id: 'no-benchmark' }, 'No artist in the catalogue yet: connect a source to compare an artist with peers.'))
      canvas.hidden = true
      return
    }
    await renderGenres(entity, from, to)
    const named = [...peers.selectedOptions].map((o) => o.value)
    const answer = await api().benchmark(entity, from, to, named.join(','))
    const kpis = KPI_ORDER.filter((k) => answer.kpis[k] && answer.kpis[k].percentile !== null)
    canvas.hidden = !kpis.length
    if (chart) chart.destroy()
    chart = new Chart(canvas, {
      type: 'bar',
      data: { labels: kpis.map((k) => KPI_TITLES[k]), datasets: [{ label: 'Percentile', data: kpis.map((k) => answer.kpis[k].percentile), backgroundColor: '#4f8ef7' }] },
      options: { animation: false, indexAxis: 'y', scales: { x: { min: 0, max: 100 } }, plugins: { legend: { display: false } } }
    })
    window.analyticsBenchmark = chart
    const which = answer.peer_set === 'chosen' ? 'the chosen peers' : 'artists of a similar size'
    body.replaceChildren(
      h('p', { class: 'hint' }, `${answer.name || entity} against ${answer.peers.length} peers (${which}).`),
      h('table', { class: 'data', id: 'benchmark-table' },
        h('thead', {}, h('tr', {}, ...['KPI', 'Artist', 'Percentile', '25th', 'Median', '75th'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...KPI_ORDER.filter((k) => answer.kpis[k]).map((k) => {
          const kpi = answer.kpis[k]
          return h('tr', { dataset: { kpi: k } }, h('td', {}, KPI_TITLES[k]), h('td', { class: 'num' }, fmt(kpi.value)),
            h('td', { class: 'num' }, kpi.percentile === null ? '–' : `${Math.round(kpi.percentile)}`),
            h('td', { class: 'num' }, fmt(kpi.p25)), h('td', { class: 'num' }, fmt(kpi.median)), h('td', { class: 'num' }, fmt(kpi.p75)))
        }))))
  }
  /** The artist's genres in the field and its ranks within each genre (or why there are none). */
  async function renderGenres (entity, from, to) {
    const listed = await api().genres()
    const mine = (listed.find((a) => a.entity_id === entity) || { genres: [] }).genres
    genreInput.value = mine.join(', ')
    if (!mine.length) {
      byGenre.replaceChildren(h('p', { class: 'empty', id: 'no-genre' }, 'This artist has no genre yet: give it some above to compare it within its genres.'))
      return
    }
    const answer = await api().genreBenchmark(entity, from, to)
    const rows = []
    for (const g of answer.genres) {
      for (const k of KPI_ORDER.filter((k) => g.kpis[k])) {
        const kpi = g.kpis[k]
        rows.push(h('tr', { dataset: { genre: g.genre, kpi: k } }, h('td', {}, g.genre), h('td', { class: 'num' }, `${g.peers.length}`),
          h('td', {}, KPI_TITLES[k]), h('td', { class: 'num' }, fmt(kpi.value)),
          h('td', { class: 'num' }, kpi.percentile === null ? '–' : `${Math.round(kpi.percentile)}`),
          h('td', { class: 'num' }, fmt(kpi.median))))
      }
    }
    byGenre.replaceChildren(h('table', { class: 'data', id: 'benchmark-genre-table' },
      h('caption', {}, 'Within each genre'),
      h('thead', {}, h('tr', {}, ...['Genre', 'Peers', 'KPI', 'Artist', 'Percentile', 'Median'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows)))
  }
  genreSave.addEventListener('click', async () => {
    if (!last) return
    const artist = last.artists.find((a) => a.entity_id === last.entity) || last.artists[0]
    if (!artist) return
    const genres = genreInput.value.split(',').map((g) => g.trim()).filter(Boolean)
    try {
      await api().setGenres(artist.entity_id, genres)
      say('Genres saved.')
      await render(last.from, last.to, last.entity, last.artists)
    } catch (err) {
      say(`Saving the genres failed: ${err.message}`, 'alert')
    }
  })
  peers.addEventListener('change', () => {
    if (last) render(last.from, last.to, last.entity, last.artists).catch((err) => say(`The benchmark failed: ${err.message}`, 'alert'))
  })

  const element = h('section', { class: 'panel', 'aria-labelledby': 'benchmark-title' },
    h('h2', { id: 'benchmark-title' }, 'Benchmark'),
    h('label', { class: 'field', for: 'benchmark-peers' }, h('span', {}, 'Peers (none chosen: similar size)'), peers),
    body, canvas,
    h('label', { class: 'field', for: 'artist-genres' }, h('span', {}, 'Genres (comma-separated)'), genreInput), genreSave,
    byGenre)
  return { element, render }
}
