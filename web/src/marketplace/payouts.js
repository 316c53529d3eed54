// The payouts panel of /sales-reports: the seller's balance (available in our books, and
// what is on its way to the bank), today's instant payout terms (fee, daily limit), a form
// asking for a payout (instant, standard or the best allowed now) that shows the server's
// refusal as its message, the payout history with each payout's status, and the members.
import { call, me } from '../account/client.js'
import { h } from '../dom.js'

/** `minor` units of `currency` as text (two decimals: the marketplace's currencies). */
const money = (minor, currency) => `${(minor / 100).toFixed(2)} ${String(currency).toUpperCase()}`
const when = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')
const STATUS = { pending: 'on its way', paid: 'paid', failed: 'failed or returned', refused: 'refused by Stripe' }

/** The instant payout's fee as the server computes it: basis points, rounded up, a minimum. */
export function instantFee (amount, terms) {
  return Math.max(terms.fee_minimum, Math.ceil(amount * terms.fee_basis_points / 10000))
}

function historyTable (payouts) {
  if (!payouts.length) return h('p', { id: 'no-payouts' }, 'No payouts yet.')
  const rows = payouts.map((p) => h('tr', { dataset: { payout: p.payout_id, status: p.status } },
    h('td', {}, when(p.created_at)), h('td', { class: 'num' }, money(p.amount, p.currency)),
    h('td', { class: 'num' }, money(p.fee, p.currency)), h('td', {}, p.method),
    h('td', { class: 'status' }, STATUS[p.status] || p.status), h('td', {}, p.note || '')))
  return h('table', { id: 'payout-history' }, h('thead', {}, h('tr', {}, h('th', {}, 'Asked'),
    h('th', {}, 'Amount'), h('th', {}, 'Fee'), h('th', {}, 'Method'), h('th', {}, 'Status'),
    h('th', {}, 'Note'))), h('tbody', {}, ...rows))
}

async function membersSection () {
  let members
  try {
    members = await call('/api/marketplace/members')
  } catch (error) {
    return h('section', { id: 'members' }, h('h2', {}, 'Members'), h('p', {}, error.message))
  }
  const rows = members.map((m) => h('tr', { dataset: { membership: m.membership_id } },
    h('td', {}, m.plan ? m.plan.name : m.plan_id), h('td', {}, m.status),
    h('td', {}, m.period_end ? when(m.period_end) : '')))
  return h('section', { id: 'members' }, h('h2', {}, 'Members'), members.length
    ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Plan'), h('th', {}, 'Status'),
      h('th', {}, 'Paid until'))), h('tbody', {}, ...rows))
    : h('p', {}, 'No members yet.'))
}

/** Fill `panel` with the payouts (and members) of the signed-in seller; again after a payout. */
export async function loadPayouts (panel, message = null) {
  let options, payouts
  try {
    [options, payouts] = await Promise.all([call('/api/marketplace/payouts/options'),
      call('/api/marketplace/payouts')])
  } catch (error) {
    panel.replaceChildren(h('h2', {}, 'Payouts'), h('p', { id: 'payouts-unavailable' }, error.message),
      await membersSection())
    return
  }
  const cur = options.currency
  const instant = options.instant
  const onItsWay = payouts.filter((p) => p.status === 'pending' && p.currency === cur)
    .reduce((sum, p) => sum + p.amount, 0)
  const amount = h('input', { type: 'number', name: 'amount', min: '0.01', step: '0.01', required: true })
  const method = h('select', { name: 'method' }, h('option', { value: 'auto' }, 'Instant if allowed, else standard'),
    h('option', { value: 'instant' }, 'Instant'), h('option', { value: 'standard' }, 'Standard'))
  const result = h('p', { id: 'payout-result', 'aria-live': 'polite' })
  if (message) result.replaceChildren(message)
  const button = h('button', { type: 'submit', id: 'pay-out' }, 'Pay out')
  const form = h('form', { id: 'payout-form' }, h('label', {}, `Amount (${cur.toUpperCase()})`, amount),
    h('label', {}, 'Method', method), button)
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const minor = Math.round(Number(amount.value) * 100)
    if (!(minor > 0)) return
    button.disabled = true
    try {
      await me() // the session's CSRF token for the write
      const made = await call('/api/marketplace/payouts', {
        method: 'POST', body: { amount: minor, currency: cur, method: method.value }
      })
      await loadPayouts(panel, h('span', { class: 'ok' },
        `Asked for ${money(made.amount, made.currency)} (${made.method}).`))
    } catch (error) {
      button.disabled = false
      result.replaceChildren(h('span', { role: 'alert' }, error.message))
    }
  })
  const terms = instant.eligible
    ? `Instant payouts: fee ${(instant.fee_basis_points / 100).toFixed(2)} % (at least ` +
      `${money(instant.fee_minimum, cur)}), ${money(instant.remaining_today, cur)} of today's ` +
      `${money(instant.daily_limit, cur)} limit left.`
    : 'Instant payouts: not available for this account now (standard payouts are).'
  panel.replaceChildren(h('h2', {}, 'Payouts'),
    h('dl', { class: 'balance' }, h('dt', {}, 'Available'),
      h('dd', { id: 'available' }, money(options.available, cur)),
      h('dt', {}, 'Pending (on its way to the bank)'), h('dd', { id: 'pending' }, money(onItsWay, cur))),
    h('p', { id: 'instant-terms' }, terms), form, result, historyTable(payouts),
    await membersSection())
  panel.dataset.ready = 'true'
}
