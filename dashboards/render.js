'use strict';
// Renders dashboards/chatbot.json into the CloudWatch DashboardBody, for serverless.yml:
//   DashboardBody: ${file(./dashboards/render.js):body}
// Placeholders `${Name}` whose Name is a key of `custom.dashboard` in serverless.yml are filled
// in at package time (a string that is only a placeholder of a number becomes that number, for
// annotation values). What is known only at deploy time — `${AWS::Region}`,
// `${AWS::AccountId}`, `${AWS::Partition}`, `${HttpApi}` — is left to Fn::Sub. Any other
// placeholder fails the package, so a typo never reaches a deployed dashboard, except
// `${!Name}`: Fn::Sub's escape for a literal `${Name}`, which CloudWatch reads as a dynamic
// label (`${!LABEL}` becomes `${LABEL}`, each series' own name). One value is
// derived rather than configured: `BudgetAlarmUsd`, the daily budget at the alarm's percentage
// (the daily-budget alarm's line on the spend widget).
//
// Hand-written (about 40 lines) because a DashboardBody must be one JSON string and
// CloudFormation's Fn::ToJsonString needs a transform that `osls deploy` does not enable.

const fs = require('fs');
const path = require('path');

const DEPLOY_TIME = new Set(['AWS::Region', 'AWS::AccountId', 'AWS::Partition', 'HttpApi']);
const PLACEHOLDER = /\$\{([^}]+)\}/g;

function fill(value, vars) {
  if (Array.isArray(value)) return value.map((v) => fill(v, vars));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, vars)]));
  }
  if (typeof value !== 'string') return value;
  const whole = /^\$\{([^}]+)\}$/.exec(value);
  if (whole && Object.hasOwn(vars, whole[1]) && /^-?\d+(\.\d+)?$/.test(String(vars[whole[1]]))) {
    return Number(vars[whole[1]]);
  }
  return value.replace(PLACEHOLDER, (match, name) => {
    if (name.startsWith('!')) return match;
    if (Object.hasOwn(vars, name)) return String(vars[name]);
    if (DEPLOY_TIME.has(name)) return match;
    throw new Error(`dashboards/chatbot.json: unknown placeholder ${match}`);
  });
}

/** `vars` plus the values computed from them. */
function derive(vars) {
  const out = { ...vars };
  if (Object.hasOwn(vars, 'DailyBudgetUsd') && Object.hasOwn(vars, 'BudgetAlarmPercent')) {
    const usd = (Number(vars.DailyBudgetUsd) * Number(vars.BudgetAlarmPercent)) / 100;
    if (!Number.isFinite(usd)) {
      throw new Error('dashboards/render.js: DailyBudgetUsd and BudgetAlarmPercent must be numbers');
    }
    out.BudgetAlarmUsd = Math.round(usd * 1e6) / 1e6;
  }
  return out;
}

/** The dashboard body as Fn::Sub over the filled-in JSON text. */
function render(template, vars) {
  return { 'Fn::Sub': JSON.stringify(fill(template, derive(vars))) };
}

module.exports = {
  render,
  async body({ resolveVariable }) {
    const vars = await resolveVariable('self:custom.dashboard');
    const file = path.join(__dirname, 'chatbot.json');
    return render(JSON.parse(fs.readFileSync(file, 'utf8')), vars);
  },
};
