// The analytics plug-in's routes, called as the signed-in person for one account: their own
// (account '') or an organisation's (?account=ID). Writes carry the session's CSRF token.
import { call } from '../account/client.js'

const BASE = '/api/analytics'

/** `path` with `params` (empty values left out) and the account named, as a URL. */
function url (path, account, params = {}) {
  const query = new URLSearchParams()
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(key, value)
  }
  if (account) query.set('account', account)
  const text = query.toString()
  return `${BASE}${path}${text ? `?${text}` : ''}`
}

const id = (value) => encodeURIComponent(value)

/** The routes of one account; `account` '' is the signed-in person's own. */
export function analyticsApi (account = '') {
  return {
    account,
    platforms: () => call(url('/platforms', account)),
    sources: () => call(url('/sources', account)),
    freshness: () => call(url('/freshness', account)),
    /** Connect a source: {source, entity_kind, entity_id, entity_name, ...credentials}. */
    connect: (body) => call(url('/sources', account), { method: 'POST', body }),
    /** Back-fill a source for days `from`..`to` (YYYY-MM-DD); answers the run. */
    backfill: (sourceId, from, to) => call(url(`/sources/${id(sourceId)}/backfill`, account),
      { method: 'POST', body: { from, to } }),
    run: (runId) => call(url(`/runs/${id(runId)}`, account)),
    catalog: (kind) => call(url('/catalog', account, { kind })),
    /** An entity's KPIs over days `from`..`to`, growth and one series per platform. */
    kpis: (entity, from, to) => call(url('/kpis', account, { entity, from, to })),
    /** Milestones, newest day first; and the signed-in person's alert preferences. */
    milestones: (limit = 20) => call(url('/milestones', account, { limit })),
    preferences: () => call(url('/alerts/preferences', account)),
    savePreferences: (body) => call(url('/alerts/preferences', account), { method: 'PUT', body }),
    /** Playlist placements (with position history) and adds/removes over `from`..`to`. */
    playlists: (from, to, entity) => call(url('/playlists', account, { from, to, entity })),
    playlistChanges: (from, to, entity) => call(url('/playlists/changes', account, { from, to, entity })),
    /** Audience per platform (countries, cities, ages, genders) over `from`..`to`. */
    audience: (from, to, entity) => call(url('/audience', account, { from, to, entity })),
    /** An artist's KPIs against `peers` (comma-separated ids; '' = similar size). */
    benchmark: (entity, from, to, peers) => call(url('/benchmark', account, { entity, from, to, peers })),
    /** Every artist with its genres; set one artist's (editors); its ranks within each genre. */
    genres: () => call(url('/genres', account)),
    setGenres: (entity, genres) => call(url(`/catalog/${id(entity)}/genres`, account), { method: 'PUT', body: { genres } }),
    genreBenchmark: (entity, from, to) => call(url('/benchmark/genres', account, { entity, from, to })),
    /** Saved dashboards: one's own and the team's shared ones. */
    dashboards: () => call(url('/dashboards', account)),
    createDashboard: (body) => call(url('/dashboards', account), { method: 'POST', body }),
    shareDashboard: (dashboardId, shared) => call(url(`/dashboards/${id(dashboardId)}/share`, account),
      { method: 'POST', body: { shared } }),
    deleteDashboard: (dashboardId) => call(url(`/dashboards/${id(dashboardId)}`, account), { method: 'DELETE' }),
    widgetData: (dashboardId, widgetId) =>
      call(url(`/dashboards/${id(dashboardId)}/widgets/${id(widgetId)}/data`, account)),
    /** The address of a widget's export (`format` csv or parquet), for a download link. */
    exportUrl: (dashboardId, widgetId, format) =>
      url(`/dashboards/${id(dashboardId)}/widgets/${id(widgetId)}/export`, account, { format })
  }
}
