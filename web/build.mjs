// Build the pages into dawserver/static/ (or --outdir DIR): app.js (esbuild bundle of
// src/main.js with yjs and y-websocket), app.css, index.html; account.js (bundle of
// src/account/main.js: sign-up, sign-in, team, sessions, keys, two-factor), account.css,
// account.html; redoc.standalone.js (Redoc's own bundle, for the API reference at
// /api/docs) and build-info.json, whose `sources_sha256` lets the Python tests check that
// the committed bundle is current. The social plug-in's calendar page (src/social/) goes into
// business/social/static/ (or --social-outdir DIR; with only --outdir DIR: DIR/social):
// calendar.js (with FullCalendar), calendar.css, calendar.html and its own build-info.json
// over the same sources. The analytics plug-in's dashboard (src/analytics/) goes into
// business/analytics/static/ (or --analytics-outdir DIR; with only --outdir DIR:
// DIR/analytics): dashboard.js (with Chart.js), dashboard.css, dashboard.html and its own
// build-info.json over the same sources. The developer dashboard (src/developer/) goes into
// dawserver/public_api/static/ (or --developer-outdir DIR; with only --outdir DIR:
// DIR/developer): developer.js (with Chart.js), developer.css, developer.html and its own
// build-info.json over the same sources. The marketplace's sales reports page
// (src/marketplace/) goes into business/marketplace/static/ (or --marketplace-outdir DIR;
// with only --outdir DIR: DIR/marketplace): reports.js (with Chart.js), reports.css,
// reports.html and its own build-info.json over the same sources.
import { build, version } from 'esbuild'
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const flag = process.argv.indexOf('--outdir')
const outdir = flag > 0 ? path.resolve(process.argv[flag + 1]) : path.join(here, '..', 'dawserver', 'static')
const socialFlag = process.argv.indexOf('--social-outdir')
const socialOutdir = socialFlag > 0
  ? path.resolve(process.argv[socialFlag + 1])
  : flag > 0 ? path.join(outdir, 'social') : path.join(here, '..', 'business', 'social', 'static')

const analyticsFlag = process.argv.indexOf('--analytics-outdir')
const analyticsOutdir = analyticsFlag > 0
  ? path.resolve(process.argv[analyticsFlag + 1])
  : flag > 0 ? path.join(outdir, 'analytics') : path.join(here, '..', 'business', 'analytics', 'static')

const developerFlag = process.argv.indexOf('--developer-outdir')
const developerOutdir = developerFlag > 0
  ? path.resolve(process.argv[developerFlag + 1])
  : flag > 0 ? path.join(outdir, 'developer') : path.join(here, '..', 'dawserver', 'public_api', 'static')
const marketplaceFlag = process.argv.indexOf('--marketplace-outdir')
const marketplaceOutdir = marketplaceFlag > 0
  ? path.resolve(process.argv[marketplaceFlag + 1])
  : flag > 0 ? path.join(outdir, 'marketplace') : path.join(here, '..', 'business', 'marketplace', 'static')

/** The files the bundle is made from, as '/'-separated paths under web/ (src/ and its folders). */
async function sources () {
  const src = (await readdir(path.join(here, 'src'), { recursive: true }))
    .filter((f) => /\.(js|css|html)$/.test(f)).map((f) => `src/${f.split(path.sep).join('/')}`)
  return ['build.mjs', 'package.json', 'package-lock.json', ...src].sort()
}

/** sha256 over "path NUL content NUL" of every source, in sorted order. */
async function sourcesHash () {
  const hash = createHash('sha256')
  for (const file of await sources()) {
    hash.update(file + '\0')
    hash.update(await readFile(path.join(here, file)))
    hash.update('\0')
  }
  return hash.digest('hex')
}

/** Bundle the script `entry` (under src/) into `outfile` (under the folder `into`). */
async function bundle (entry, outfile, into = outdir) {
  await build({
    entryPoints: [path.join(here, 'src', entry)],
    bundle: true,
    format: 'esm',
    target: ['chrome110', 'firefox110', 'safari16'],
    minify: !process.env.NO_MINIFY,
    legalComments: 'eof',
    charset: 'utf8',
    outfile: path.join(into, outfile),
    logLevel: 'warning'
  })
}

await mkdir(outdir, { recursive: true })
await bundle('main.js', 'app.js')
await bundle(path.join('account', 'main.js'), 'account.js')
await copyFile(path.join(here, 'src', 'style.css'), path.join(outdir, 'app.css'))
await copyFile(path.join(here, 'src', 'index.html'), path.join(outdir, 'index.html'))
await copyFile(path.join(here, 'src', 'account', 'account.css'), path.join(outdir, 'account.css'))
await copyFile(path.join(here, 'src', 'account.html'), path.join(outdir, 'account.html'))
const redoc = path.join(here, 'node_modules', 'redoc', 'bundles')
await copyFile(path.join(redoc, 'redoc.standalone.js'), path.join(outdir, 'redoc.standalone.js'))
await copyFile(path.join(redoc, 'redoc.standalone.js.LICENSE.txt'), path.join(outdir, 'redoc.standalone.js.LICENSE.txt'))
const redocVersion = JSON.parse(await readFile(path.join(here, 'node_modules', 'redoc', 'package.json'))).version
const info = {
  sources_sha256: await sourcesHash(),
  esbuild: version,
  redoc: redocVersion,
  files: ['app.js', 'app.css', 'index.html', 'account.js', 'account.css', 'account.html',
    'redoc.standalone.js', 'redoc.standalone.js.LICENSE.txt']
}
await writeFile(path.join(outdir, 'build-info.json'), JSON.stringify(info, null, 2) + '\n')
console.log(`built ${outdir} (sources ${info.sources_sha256.slice(0, 12)})`)

/** One plug-in page: its script bundled as `${name}.js`, its stylesheet and HTML copied,
 * and a build-info.json naming the sources, esbuild and the libraries it bundles. */
async function buildPage (dir, entry, name, outdir, libraries) {
  await mkdir(outdir, { recursive: true })
  await bundle(path.join(dir, entry), `${name}.js`, outdir)
  for (const ext of ['css', 'html']) {
    await copyFile(path.join(here, 'src', dir, `${name}.${ext}`), path.join(outdir, `${name}.${ext}`))
  }
  const pageInfo = {
    sources_sha256: info.sources_sha256,
    esbuild: version,
    ...libraries,
    files: [`${name}.js`, `${name}.css`, `${name}.html`]
  }
  await writeFile(path.join(outdir, 'build-info.json'), JSON.stringify(pageInfo, null, 2) + '\n')
  console.log(`built ${outdir} (sources ${pageInfo.sources_sha256.slice(0, 12)})`)
}

const packageVersion = async (...parts) =>
  JSON.parse(await readFile(path.join(here, 'node_modules', ...parts, 'package.json'))).version
const fullcalendar = await packageVersion('@fullcalendar', 'core')
const chartjs = await packageVersion('chart.js')
await buildPage('social', 'main.js', 'calendar', socialOutdir, { fullcalendar })
await buildPage('analytics', 'main.js', 'dashboard', analyticsOutdir, { chartjs })
await buildPage('developer', 'main.js', 'developer', developerOutdir, { chartjs })
await buildPage('marketplace', 'reports.js', 'reports', marketplaceOutdir, { chartjs })
