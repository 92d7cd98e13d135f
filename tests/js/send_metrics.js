'use strict';
// Sends a known set of metrics to otel-hms with the OpenTelemetry JavaScript SDK over OTLP/gRPC.
//
//   node send_metrics.js [ENDPOINT] [PREFIX]
//
// ENDPOINT is HOST:PORT or http://HOST:PORT (default: $OTEL_HMS_GRPC_ENDPOINT); PREFIX starts
// every metric name (default: $OTEL_HMS_METRIC_PREFIX or "sdk_node").  Two exports happen:
// forceFlush() after the first round of measurements, then shutdown() after the second, so the
// cumulative points of both exports can be checked.  Anything the SDK reports at WARN or ERROR
// (a failed export, a partial success) is printed to stderr and makes the exit code 1.
// tests/test_sdk_node.py runs this and checks every value below in SQL.

const { diag, DiagLogLevel, ValueType } = require('@opentelemetry/api');
const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-grpc');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');
const {
  AggregationType,
  MeterProvider,
  PeriodicExportingMetricReader,
} = require('@opentelemetry/sdk-metrics');

const problems = [];
function report(level) {
  return (message, ...args) => {
    const text = [message, ...args.map((a) => (a instanceof Error ? a.stack : String(a)))]
      .join(' ');
    problems.push(`${level}: ${text}`);
    process.stderr.write(`otel ${level}: ${text}\n`);
  };
}
const ignore = () => {};
diag.setLogger(
  { error: report('error'), warn: report('warn'), info: ignore, debug: ignore, verbose: ignore },
  DiagLogLevel.WARN,
);

async function main() {
  let endpoint = process.argv[2] || process.env.OTEL_HMS_GRPC_ENDPOINT;
  if (!endpoint) {
    throw new Error('usage: node send_metrics.js HOST:PORT [PREFIX] (or set OTEL_HMS_GRPC_ENDPOINT)');
  }
  if (!/^[a-z]+:\/\//.test(endpoint)) {
    endpoint = `http://${endpoint}`; // http:// means plaintext gRPC
  }
  const prefix = process.argv[3] || process.env.OTEL_HMS_METRIC_PREFIX || 'sdk_node';

  const exporter = new OTLPMetricExporter({ url: endpoint, timeoutMillis: 10000 });
  const reader = new PeriodicExportingMetricReader({
    exporter,
    // Exports happen on forceFlush() and shutdown() only; the timer never fires.
    exportIntervalMillis: 600000,
    exportTimeoutMillis: 10000,
  });
  const provider = new MeterProvider({
    resource: defaultResource().merge(resourceFromAttributes({
      'service.name': 'sdk-node-e2e',
      'service.version': '4.5.6',
      'host.cores': 2,
    })),
    readers: [reader],
    views: [{
      instrumentName: `${prefix}.exp_latency`,
      aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM },
    }],
  });
  const meter = provider.getMeter('otel_hms.tests.sdk_node', '7.8.9');

  const requests = meter.createCounter(`${prefix}.requests`, {
    description: 'Requests served.',
    unit: '{request}',
    valueType: ValueType.INT,
  });
  const latency = meter.createHistogram(`${prefix}.latency`, {
    unit: 'ms',
    advice: { explicitBucketBoundaries: [1, 10, 100] },
  });
  const expLatency = meter.createHistogram(`${prefix}.exp_latency`, { unit: 's' });
  const queue = meter.createUpDownCounter(`${prefix}.queue_depth`, { valueType: ValueType.INT });
  const temperature = meter.createObservableGauge(`${prefix}.temperature`, { unit: 'Cel' });
  const readings = [[21.5, -3.25], [22.75, -4]];
  let collection = 0;
  temperature.addCallback((result) => {
    const [a, b] = readings[Math.min(collection, readings.length - 1)];
    collection += 1;
    result.observe(a, { room: 'a' });
    result.observe(b, { room: 'b' });
  });

  // First export: requests /a = 7, /b = 5; latency 0.5 1 5 10 50 500; queue -3.
  requests.add(3, { route: '/a', code: 200, cached: false });
  requests.add(4, { route: '/a', code: 200, cached: false });
  requests.add(5, { route: '/b', code: 404, cached: true });
  for (const v of [0.5, 1, 5, 10, 50, 500]) {
    latency.record(v, { route: '/h' });
  }
  for (const v of [1, 2, 4, 3, 0]) {
    expLatency.record(v);
  }
  queue.add(5);
  queue.add(-8);
  await provider.forceFlush();

  // Second export (on shutdown): requests /a = 7 + 10 = 17; latency gains 2000.
  requests.add(10, { route: '/a', code: 200, cached: false });
  latency.record(2000, { route: '/h' });
  await provider.shutdown();

  if (collection !== 2) {
    problems.push(`gauge callback ran ${collection} times, expected 2`);
  }
  process.stdout.write(`${JSON.stringify({ prefix, endpoint, collections: collection, problems })}\n`);
  return problems.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 1;
  },
);
