// /whisk.system/utils/date: the current date and time, ISO 8601 in UTC.
function main() {
  const now = new Date();
  console.log('It is now ' + now);
  return { date: now.toISOString() };
}
