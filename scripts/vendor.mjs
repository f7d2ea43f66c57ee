// Copies the browser builds of the front end's npm dependencies into static/vendor/
// (committed, so the app runs on a machine with Python only) and records their
// versions and SHA-256 sums in static/vendor/VERSIONS.json.
//
// Usage: npm install && npm run vendor
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const vendorDir = join(root, 'static', 'vendor');

const files = [
  {
    pkg: 'lightweight-charts',
    src: 'dist/lightweight-charts.standalone.production.js',
    dest: 'lightweight-charts.standalone.production.js',
  },
];

mkdirSync(vendorDir, { recursive: true });
const versions = {};
for (const { pkg, src, dest } of files) {
  const pkgDir = join(root, 'node_modules', pkg);
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const target = join(vendorDir, dest);
  copyFileSync(join(pkgDir, src), target);
  const sha256 = createHash('sha256').update(readFileSync(target)).digest('hex');
  versions[pkg] = { version, file: dest, sha256 };
  console.log(`vendored ${pkg}@${version} -> static/vendor/${dest} (sha256 ${sha256})`);
}
writeFileSync(join(vendorDir, 'VERSIONS.json'), JSON.stringify(versions, null, 2) + '\n');
