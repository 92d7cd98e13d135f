'use strict';
// A permit-status service in Node, instrumented with the OpenTelemetry JavaScript SDK and its
// stock OTLP/gRPC exporter.  The exporter reads the standard variables, so pointing it at
// otel-hms is configuration only:
//
//   npm install
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 OTEL_SERVICE_NAME=permits-node \
//   OTEL_METRIC_EXPORT_INTERVAL=5000 PORT=8080 node server.js
//
// Every request is counted and timed (http.server.request.duration, in seconds, with the
// route template, method and status code); SIGTERM or SIGINT flushes the metrics and exits.

const http = require('node:http');
const { metrics } = require('@opentelemetry/api');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-grpc');
const { defaultResource, detectResources, envDetector } = require('@opentelemetry/resources');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');

const provider = new MeterProvider({
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the service.
  resource: defaultResource().merge(detectResources({ detectors: [envDetector] })),
  readers: [new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter(), // endpoint, headers, temporality from OTEL_* variables
    exportIntervalMillis: Number(process.env.OTEL_METRIC_EXPORT_INTERVAL || 60000),
  })],
});
metrics.setGlobalMeterProvider(provider);

const meter = metrics.getMeter('permits-node-example');
const duration = meter.createHistogram('http.server.request.duration', {
  unit: 's',
  description: 'Duration of HTTP server requests.',
  advice: { explicitBucketBoundaries: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5] },
});
const lookups = meter.createCounter('permit_lookups_total', { description: 'Permits looked up' });

function route(url) {
  if (/^\/permits\/[^/]+$/.test(url)) return '/permits/{number}';
  if (url === '/healthz') return '/healthz';
  return null;
}

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint();
  const template = route(req.url);
  res.on('finish', () => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const attributes = { 'http.request.method': req.method,
                         'http.response.status_code': res.statusCode };
    if (template) attributes['http.route'] = template;
    duration.record(seconds, attributes);
  });
  if (template === '/permits/{number}') {
    lookups.add(1, { found: 'true' });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ permit: req.url.split('/')[2], status: 'granted' }));
  } else if (template === '/healthz') {
    res.end('ok');
  } else {
    res.writeHead(404);
    res.end('not found');
  }
});

server.listen(Number(process.env.PORT || 8080), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}`);
});

async function stop() {
  server.close();
  await provider.shutdown(); // the last export: nothing recorded is lost
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
