// The calendar itself: FullCalendar's month (dayGridMonth) and week (timeGridWeek) views of
// the account's dated posts, in the browser's time zone. Dragging a post asks the server to
// move it; a refusal puts it back and shows the server's words.
import { Calendar } from '@fullcalendar/core'
import dayGridPlugin from '@fullcalendar/daygrid'
import timeGridPlugin from '@fullcalendar/timegrid'
import interactionPlugin from '@fullcalendar/interaction'
import { formatWhen } from './zone.js'
import { stateWord } from './details.js'

export const VIEWS = { month: 'dayGridMonth', week: 'timeGridWeek' }
/** Posts the server will not move whatever the time: they are out or on their way. */
const FIXED = new Set(['publishing', 'published', 'cancelled'])

/** How long a post (an instant) looks in the week view: 15 minutes, cut at midnight. */
const SHOWN_MS = 15 * 60 * 1000

/** The end a post at `start` (ms) is drawn to: never into the next day. */
function shownEnd (start) {
  const midnight = new Date(start)
  midnight.setHours(24, 0, 0, 0)
  return Math.min(start + SHOWN_MS, midnight.getTime())
}

/** A calendar entry (GET /api/social/calendar) as a FullCalendar event. */
export function toEvent (entry) {
  const firstLine = (entry.text || '').split('\n')[0]
  const start = entry.publish_at_epoch * 1000
  return {
    id: entry.post_id,
    title: `${entry.networks.join(', ')} · ${firstLine.length > 60 ? `${firstLine.slice(0, 59)}…` : firstLine}`,
    start,
    end: shownEnd(start),
    allDay: false,
    startEditable: !FIXED.has(entry.state),
    classNames: [`state-${entry.state}`],
    extendedProps: { entry }
  }
}

/**
 * Draw the calendar into `element`. `load(from, to)` resolves with calendar entries,
 * `move(entry, date)` with true when the server moved the post, `open(postId)` shows one,
 * `changed({view, date})` follows the shown view and its first day.
 */
export function calendarView (element, { view, date, load, move, open, changed }) {
  const calendar = new Calendar(element, {
    plugins: [dayGridPlugin, timeGridPlugin, interactionPlugin],
    initialView: VIEWS[view] || VIEWS.month,
    initialDate: date || undefined,
    timeZone: 'local',
    firstDay: 1,
    height: 'auto',
    nowIndicator: true,
    editable: true,
    eventDurationEditable: false,
    eventInteractive: true,
    dayMaxEvents: 4,
    headerToolbar: { left: 'prev,next today', center: 'title', right: 'dayGridMonth,timeGridWeek' },
    buttonText: { today: 'Today', month: 'Month', week: 'Week' },
    buttonHints: { prev: 'Previous $0', next: 'Next $0', today: 'Go to $0' },
    viewHint: (buttonText) => `Show the ${buttonText.toLowerCase()} view`,
    eventTimeFormat: { hour: '2-digit', minute: '2-digit', hour12: false },
    slotLabelFormat: { hour: '2-digit', minute: '2-digit', hour12: false },
    displayEventEnd: false,
    eventMinHeight: 22,
    events: (info, success) => {
      load(info.start, info.end).then((entries) => success(entries.map(toEvent)),
        () => success([]))
    },
    eventDidMount: (info) => {
      const entry = info.event.extendedProps.entry
      info.el.dataset.postId = entry.post_id
      info.el.dataset.state = entry.state
      info.el.setAttribute('aria-label', `${formatWhen(info.event.start)}, ` +
        `${stateWord(entry.state)}: ${entry.text || '(no text)'} on ${entry.networks.join(', ')}`)
    },
    eventClick: (info) => {
      info.jsEvent.preventDefault()
      open(info.event.id)
    },
    eventDrop: async (info) => {
      const entry = info.event.extendedProps.entry
      if (!(await move(entry, info.event.start))) info.revert()
    },
    datesSet: (info) => changed({
      view: info.view.type === VIEWS.week ? 'week' : 'month',
      date: info.view.currentStart
    })
  })
  calendar.render()
  return calendar
}
