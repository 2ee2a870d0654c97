// Go's %g (strconv.FormatFloat 'g'): used by templates' printf and by docker's human sizes. Its own
// module so size printing does not load the template engine.

/** Go's %g with a precision (`-1`: shortest), as strconv.FormatFloat(f, 'g', prec, 64). */
export function formatFloatG(x: number, prec = -1): string {
  if (!isFinite(x)) return isNaN(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  let digits: string; // mantissa digits without the dot
  let exp: number; // decimal exponent of the first digit
  if (prec < 0) {
    const [m, e] = x.toExponential().split("e");
    digits = m.replace("-", "").replace(".", "");
    exp = Number(e);
  } else {
    const [m, e] = x.toExponential(Math.max(prec, 1) - 1).split("e");
    digits = m.replace("-", "").replace(".", "").replace(/0+$/, "") || "0";
    exp = Number(e);
  }
  const eprec = prec < 0 ? 21 : Math.max(prec, 1); // shortest %v switches to exponent at 1e21
  const sign = x < 0 ? "-" : "";
  if (exp < -4 || exp >= eprec) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const es = Math.abs(exp) < 10 ? `0${Math.abs(exp)}` : String(Math.abs(exp));
    return `${sign}${mant}e${exp < 0 ? "-" : "+"}${es}`;
  }
  if (exp < 0) return `${sign}0.${"0".repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return sign + digits + "0".repeat(exp + 1 - digits.length);
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}
