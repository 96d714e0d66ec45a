// /whisk.system/utils/split: splits `payload` by `separator` (default: line breaks) into
// `lines`, and answers the payload too.
function main(params) {
  const payload = params.payload === undefined ? '' : String(params.payload);
  const separator = params.separator || /\r?\n/;
  const lines = payload.split(separator);
  console.log('split: ' + lines.length + ' lines');
  return { lines: lines, payload: payload };
}
