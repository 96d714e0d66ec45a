// /whisk.system/utils/cat: joins `lines` with newlines into `payload`, dropping every other
// parameter.
function main(params) {
  const lines = params.lines || [];
  const result = { lines: lines, payload: lines.join('\n') };
  console.log('cat: returning ' + JSON.stringify(result));
  return result;
}
