// Sends identify/track/page/screen with @segment/analytics-node, in its own
// batching, to the Insights tracking URL given in INSIGHTS_TRACK_URL, set up
// as docs/segment-api.md says; exits non-zero on any delivery error. Run by
// tests/e2e/test_segment_sdks.py.
const { Analytics } = require('@segment/analytics-node')

const chrome =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 ' +
  '(KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36'
const context = { ip: '81.2.69.160', userAgent: chrome }
const trackUrl = new URL(process.env.INSIGHTS_TRACK_URL)
const analytics = new Analytics({
  writeKey: process.env.INSIGHTS_WRITE_KEY,
  // analytics-node builds its URL as new URL(path, host), which drops any path
  // in host: a tracking URL with a path (the local stack's /_url/TrackFunction)
  // goes in two parts.
  host: trackUrl.origin,
  path: trackUrl.pathname.replace(/\/+$/, '') + '/v1/batch',
  maxEventsInBatch: 3,
  flushInterval: 200,
})
const failures = []
analytics.on('error', (err) => failures.push(String(err && (err.reason || err.code || err))))

const t0 = Date.now()
const at = (ms) => new Date(t0 + ms)
analytics.identify({
  userId: 'node-1',
  traits: { name: 'Grace', plan: 'free', company: { name: 'Navy' } },
  timestamp: at(-60000),
  context,
})
analytics.track({
  userId: 'node-1',
  event: 'Upgraded',
  properties: { plan: 'pro', revenue: 30 },
  timestamp: at(-50000),
  context,
})
analytics.page({ userId: 'node-1', name: 'Pricing', properties: { path: '/pricing' }, timestamp: at(-40000), context })
analytics.screen({ userId: 'node-1', name: 'Home', timestamp: at(-30000), context })
analytics.track({ anonymousId: 'anon-1', event: 'Viewed', context })
analytics.closeAndFlush({ timeout: 20000 }).then(() => {
  if (failures.length) {
    console.error('delivery failed: ' + failures.join('; '))
    process.exit(1)
  }
  console.log('sent')
})
