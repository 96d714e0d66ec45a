// /whisk.system/utils/sort: sorts `lines` in JavaScript's default (string) order and reports
// how many there are.
function main(params) {
  const lines = params.lines || [];
  lines.sort();
  console.log('sort: ' + lines.length + ' lines');
  return { lines: lines, length: lines.length };
}
