#!/usr/bin/env node
// A downstream consumer of the RaceLab odds stream, in Node.js: reads a normalized topic with kafkajs and checks
// every message against the JSON Schema that `racelab schemas export DIR` writes, with Ajv. Any normalized topic
// works the same with its own schema file.
//
//   npm ci
//   racelab schemas export contracts/
//   node consumer.js --brokers 127.0.0.1:19092 --schema contracts/racelab.odds.schema.json --topic racelab.odds
//
// Prints one JSON line per message: {"topic", "partition", "offset", "key", "valid", "errors"} (errors: one string
// per violation, empty when valid). Stops after --max-messages, or when nothing arrived for --idle-ms after joining
// the group, or on Ctrl+C; then prints a summary to stderr. Exit code 0 when every message was valid, 1 otherwise,
// 2 on bad arguments or a failure (broker unreachable, schema unreadable).
"use strict";

const fs = require("node:fs");
const { parseArgs } = require("node:util");
const { Kafka, logLevel, CompressionTypes, CompressionCodecs } = require("kafkajs");
const { compressFrame, decompressFrame } = require("lz4-napi");
const Ajv2020 = require("ajv/dist/2020");
const addFormats = require("ajv-formats");

const USAGE = `usage: node consumer.js --schema FILE [options]
  --schema FILE               JSON Schema of the topic's messages (from \`racelab schemas export DIR\`)
  --topic NAME                topic to read: PREFIX.odds (default racelab.odds; PREFIX is RACELAB_TOPICS__PREFIX)
  --brokers LIST              bootstrap servers, comma separated (default $KAFKA_BROKERS or 127.0.0.1:9092)
  --group ID                  consumer group (default racelab-odds-node)
  --latest                    a new group starts at the end of the topic (default: from the beginning)
  --max-messages N            stop after N messages (default 0: no limit)
  --idle-ms MS                stop when nothing arrived for MS after joining the group (default 0: never)
  --session-timeout-ms MS     group session timeout (default 30000)
  --rebalance-timeout-ms MS   group rebalance timeout (default 60000)`;

function readOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      schema: { type: "string" },
      topic: { type: "string", default: "racelab.odds" },
      brokers: { type: "string", default: process.env.KAFKA_BROKERS || "127.0.0.1:9092" },
      group: { type: "string", default: "racelab-odds-node" },
      latest: { type: "boolean", default: false },
      "max-messages": { type: "string", default: "0" },
      "idle-ms": { type: "string", default: "0" },
      "session-timeout-ms": { type: "string", default: "30000" },
      "rebalance-timeout-ms": { type: "string", default: "60000" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (!values.schema) throw new Error("--schema is required");
  const count = (name) => {
    const n = Number(values[name]);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a whole number >= 0`);
    return n;
  };
  return {
    schema: values.schema,
    topic: values.topic,
    brokers: values.brokers.split(",").map((b) => b.trim()).filter(Boolean),
    group: values.group,
    fromBeginning: !values.latest,
    maxMessages: count("max-messages"),
    idleMs: count("idle-ms"),
    sessionTimeout: count("session-timeout-ms"),
    rebalanceTimeout: count("rebalance-timeout-ms"),
  };
}

// pydantic writes JSON Schema draft 2020-12 ($defs); Ajv's strict mode also rejects unknown keywords.
function loadValidator(schemaFile) {
  const ajv = new Ajv2020({ allErrors: true });
  addFormats(ajv);
  return ajv.compile(JSON.parse(fs.readFileSync(schemaFile, "utf8")));
}

function check(validate, value) {
  let record;
  try {
    record = JSON.parse(value === null ? "null" : value.toString("utf8"));
  } catch (error) {
    return [`not JSON: ${error.message}`];
  }
  if (validate(record)) return [];
  return validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`);
}

// The pipeline compresses its topics with LZ4 (RACELAB_BROKER__COMPRESSION); kafkajs reads gzip on its own and other
// codecs once registered. Kafka's LZ4 is the LZ4 frame format.
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  compress: (encoder) => compressFrame(encoder.buffer),
  decompress: (buffer) => decompressFrame(buffer),
});

// kafkajs logs to stdout by default; the JSON lines own stdout, so its warnings and errors go to stderr.
const stderrLog = () => ({ namespace, level, log }) => {
  if (level <= logLevel.WARN) process.stderr.write(`kafkajs ${namespace}: ${log.message}\n`);
};

async function main() {
  let options;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (error) {
    console.error(`${error.message}\n${USAGE}`);
    return 2;
  }
  const validate = loadValidator(options.schema);
  const kafka = new Kafka({ clientId: "racelab-odds-node", brokers: options.brokers, logCreator: stderrLog });
  const consumer = kafka.consumer({
    groupId: options.group,
    sessionTimeout: options.sessionTimeout,
    rebalanceTimeout: options.rebalanceTimeout,
  });

  let read = 0;
  let invalid = 0;
  let crash = null;
  let lastActivity = null; // the idle clock starts when the group is joined (a join can take seconds)
  let limitReached = false;
  let finished;
  const done = new Promise((resolve) => (finished = resolve));
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    lastActivity = Date.now();
    console.error(`joined group ${payload.groupId}: ${JSON.stringify(payload.memberAssignment)}`);
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart) return; // kafkajs retries on its own
    crash = payload.error;
    finished();
  });
  process.once("SIGINT", () => finished());
  process.once("SIGTERM", () => finished());
  const idle = options.idleMs > 0 && setInterval(() => {
    if (lastActivity !== null && Date.now() - lastActivity >= options.idleMs) finished();
  }, 100);

  await consumer.connect();
  await consumer.subscribe({ topics: [options.topic], fromBeginning: options.fromBeginning });
  await consumer.run({
    eachMessage: async ({ topic, partition, message, pause }) => {
      if (limitReached) return pause(); // past the limit (another partition, same fetch): kafkajs marks it read
      lastActivity = Date.now();
      const errors = check(validate, message.value);
      read += 1;
      if (errors.length) invalid += 1;
      const key = message.key === null ? null : message.key.toString("utf8");
      const line = { topic, partition, offset: Number(message.offset), key, valid: !errors.length, errors };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      if (options.maxMessages && read >= options.maxMessages) {
        limitReached = true;
        pause(); // the rest of this batch stays unread (and uncommitted) for the next run of the group
        finished();
      }
    },
  });

  await done;
  if (idle) clearInterval(idle);
  await consumer.disconnect();
  console.error(`read ${read} message(s) from ${options.topic}: ${read - invalid} valid, ${invalid} invalid`);
  if (crash) throw crash;
  return invalid ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`error: ${error.message}`);
    process.exit(2);
  },
);
