// Times in the person's own time zone (the browser's), always shown with the zone.

/** The browser's IANA time zone, e.g. 'Europe/Berlin'. */
export function browserZone () {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'
}

/** The zone's short name at `date` ('CET', 'GMT+1'). */
export function zoneAbbreviation (date = new Date()) {
  const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
    .formatToParts(date).find((p) => p.type === 'timeZoneName')
  return part ? part.value : ''
}

/** "Tue, 8 Dec 2026, 09:30 CET" in the browser's zone. */
export function formatWhen (date) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: 'short', day: 'numeric', month: 'short', year: 'numeric',
    hour: '2-digit', minute: '2-digit', timeZoneName: 'short'
  }).format(date)
}

/** "Times in Europe/Berlin (CET)". */
export function zoneLine (date = new Date()) {
  const abbreviation = zoneAbbreviation(date)
  const zone = browserZone()
  return `Times in ${zone}${abbreviation && abbreviation !== zone ? ` (${abbreviation})` : ''}`
}

/** A Date as the value of an <input type="datetime-local"> (local time, minutes). */
export function localInputValue (date) {
  const pad = (n) => String(n).padStart(2, '0')
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
}
