// Starts the static host of static_host.conf.in (a real nginx) for a test and stops it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    }).on('error', reject);
  });
}

function answers(port) {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
    c.on('error', () => resolve(false));
  });
}

export async function startNginx(root) {
  const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'annpack-nginx-'));
  const [port, portNoRange] = [await freePort(), await freePort()];
  const conf = fs.readFileSync(path.join(here, 'static_host.conf.in'), 'utf8')
    .replaceAll('@LOGS@', logs).replaceAll('@ROOT@', root)
    .replaceAll('@PORT@', String(port)).replaceAll('@PORT_NORANGE@', String(portNoRange))
    .replaceAll('@USER@', process.getuid() === 0 ? 'user root;' : '');
  fs.writeFileSync(path.join(logs, 'nginx.conf'), conf);
  const exe = fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';
  const proc = spawn(exe, ['-c', path.join(logs, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const deadline = Date.now() + 20000;
  while (!(await answers(port) && await answers(portNoRange))) {
    if (proc.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    if (Date.now() > deadline) { proc.kill(); throw new Error('nginx did not start'); }
    await new Promise((r) => setTimeout(r, 50));
  }
  const log = path.join(logs, 'access.log');
  return {
    url: `http://127.0.0.1:${port}/`,
    urlNoRange: `http://127.0.0.1:${portNoRange}/`,
    // Access-log lines written so far: [{method, uri, range, status, bytes}].
    requests() {
      const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
      return text.split('\n').filter(Boolean).map((l) => {
        const m = /^(\S+) (\S+) "([^"]*)" (\d+) (\d+)$/.exec(l);
        return m ? { method: m[1], uri: m[2], range: m[3] === '-' ? null : m[3], status: Number(m[4]), bytes: Number(m[5]) } : { line: l };
      });
    },
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      fs.rmSync(logs, { recursive: true, force: true });
    },
  };
}
