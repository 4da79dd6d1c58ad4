// Evaluates the differential test's flags with the JS flagd core
// (@openfeature/flagd-core). Reads a JSON array on stdin, one item per flag:
// {"document", "flag", "type", "contexts": [...]}; writes one JSON line per
// item: the answers, one per context ({value, variant, reason, errorCode}).
'use strict';
const { FlagdCore } = require('@openfeature/flagd-core');

const silent = { error() {}, warn() {}, info() {}, debug() {} };
const defaults = { boolean: false, string: 'DEFAULT', number: -1, object: {} };
const thrown = (type, e) => ({ value: defaults[type], variant: null, reason: 'ERROR', errorCode: 'THROWN', message: String(e) });

const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const lines = [];
for (const item of items) {
  const core = new FlagdCore(undefined, silent);
  let loaded = null;
  try {
    core.setConfigurations(JSON.stringify(item.document));
  } catch (e) {
    loaded = e;
  }
  const answers = item.contexts.map((context) => {
    if (loaded) return thrown(item.type, loaded);
    try {
      const r = core.resolve(item.type, item.flag, defaults[item.type], context, silent);
      // The rule engine threw (json-logic-engine refuses some mixed types):
      // an exception, not an answer about the rule's meaning.
      if (r.errorCode === 'GENERAL' && /^Error evaluating targeting rule/.test(r.errorMessage || '')) {
        return thrown(item.type, r.errorMessage);
      }
      return {
        value: r.value === undefined ? null : r.value,
        variant: r.variant === undefined ? null : r.variant,
        reason: r.reason || null,
        errorCode: r.errorCode || null,
        message: r.errorMessage || undefined,
      };
    } catch (e) {
      return thrown(item.type, e);
    }
  });
  lines.push(JSON.stringify(answers));
}
process.stdout.write(lines.join('\n') + '\n');
