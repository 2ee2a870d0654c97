// Go's strconv.ParseBool, which docker's flags and options go through: the words it takes.

/** Go's strconv.ParseBool; undefined for what it refuses. */
export function parseGoBool(text: string): boolean | undefined {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(text)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(text)) return false;
  return undefined;
}
