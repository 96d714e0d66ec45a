// edgewhisk bench baseline: the bench's action code behind a bare Node.js `http` server, no
// platform around it. Usage: node baseline.js ACTION_FILE. The action file is OpenWhisk action
// source defining `function main(params)`; every POST runs main on the JSON body and answers its
// result as JSON (promises are awaited), which is what the platform does minus everything else.
// Prints `baseline: listening on http://ADDR` once it accepts connections.
'use strict';
const fs = require('fs');
const http = require('http');

const source = fs.readFileSync(process.argv[2], 'utf8');
// eslint-disable-next-line no-new-func
const main = new Function('require', source + '\nreturn main;')(require);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let params = {};
    const body = Buffer.concat(chunks);
    if (body.length > 0) {
      try {
        params = JSON.parse(body);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'body is not JSON' }));
        return;
      }
    }
    Promise.resolve()
      .then(() => main(params))
      .then((result) => {
        const out = JSON.stringify(result === undefined ? {} : result);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(out);
      })
      .catch((e) => {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: String(e) }));
      });
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  console.log(`baseline: listening on http://${a.address}:${a.port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
