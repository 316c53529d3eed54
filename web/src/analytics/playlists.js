// Playlist tracking: the tracks on playlists over the range (curator, position now and best,
// followers, days on it, position history) and the adds and removes, newest first.
import { h } from '../dom.js'
import { formatNumber } from './format.js'

const CURATOR = { editorial: 'Editorial', user: 'User' }

/** Position changes only: "05-01 #12, 05-08 #11" (the days the place moved). */
function history (positions) {
  const moves = positions.filter(([, pos], i) => i === 0 || pos !== positions[i - 1][1])
  return moves.map(([day, pos]) => `${day.slice(5)} #${pos}`).join(', ')
}

/** {element, render(from, to)}. */
export function playlistsPanel ({ api, titles }) {
  const area = h('div', {})
  const changes = h('ol', { class: 'playlist-changes', id: 'playlist-changes', reversed: true })

  async function render (from, to) {
    const [placed, moved] = await Promise.all([api().playlists(from, to), api().playlistChanges(from, to)])
    if (!placed.length) {
      area.replaceChildren(h('p', { class: 'empty', id: 'no-playlists' },
        'No playlist placements in this range: Spotify, Apple Music and Deezer report them once connected and back-filled.'))
      changes.replaceChildren()
      return
    }
    const rows = placed.map((p) => h('tr', { dataset: { playlist: p.playlist_id, track: p.track_id } },
      h('td', {}, p.playlist_name), h('td', {}, titles.get(p.source) || p.source),
      h('td', {}, CURATOR[p.curator] || p.curator), h('td', {}, p.track_name || p.track_id),
      h('td', { class: 'num' }, p.on_last_day ? `#${p.position}` : 'off'),
      h('td', { class: 'num' }, `#${p.best_position}`),
      h('td', { class: 'num' }, p.followers === null ? '–' : formatNumber(p.followers)),
      h('td', {}, `${p.first_day} → ${p.last_day}`),
      h('td', { class: 'history' }, history(p.positions))))
    area.replaceChildren(h('table', { class: 'data', id: 'playlist-table' },
      h('caption', {}, `${placed.length} placements, ${from} to ${to}`),
      h('thead', {}, h('tr', {}, ...['Playlist', 'Platform', 'Curator', 'Track', 'Now', 'Best', 'Followers', 'Seen', 'Position moves']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows)))
    changes.replaceChildren(...moved.slice().reverse().slice(0, 50).map((c) => h('li', { dataset: { change: c.change } },
      h('time', { datetime: c.day }, c.day), ' ',
      `${c.track_name || c.track_id} ${c.change === 'add' ? 'added to' : 'removed from'} ${c.playlist_name} ` +
      `(${CURATOR[c.curator] || c.curator}, ${titles.get(c.source) || c.source}) at #${c.position}`)))
    if (!moved.length) changes.replaceChildren(h('li', { class: 'empty' }, 'No adds or removes in this range.'))
  }

  const element = h('section', { class: 'panel', 'aria-labelledby': 'playlists-title' },
    h('h2', { id: 'playlists-title' }, 'Playlists'), area,
    h('h3', {}, 'Adds and removes'), changes)
  return { element, render }
}
