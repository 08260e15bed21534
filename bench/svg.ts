// A small line-chart writer: series of (x, y) points to a self-contained SVG, linear or
// log axes, a legend under the plot. Enough for docs/tuning/*.svg and nothing more.

export interface Series { label: string; points: Array<[number, number]> }

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  yLog?: boolean;
  series: Series[];
}

const W = 720, H = 440, L = 72, R = 20, T = 40, B = 64;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const DASH = ['', '6 3', '2 3', '8 3 2 3', '', '6 3', '2 3', ''];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 10_000) return `${+(v / 1000).toPrecision(3)}k`;
  if (a >= 100) return String(Math.round(v));
  return String(+v.toPrecision(3));
}

/** Tick values: powers of ten (with 2 and 5 between them when the range is short) on a log axis, round steps on a linear one. */
function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    const span = Math.log10(hi / lo);
    const steps = span > 3 ? [1] : span > 1.2 ? [1, 2, 5] : [1, 1.5, 2, 3, 5, 7];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) for (const m of steps) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
    return out;
  }
  const raw = (hi - lo) / 6;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

function range(vs: number[], log: boolean): [number, number] {
  const xs = vs.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = Math.min(...xs), hi = Math.max(...xs);
  if (log) {
    if (lo === hi) { lo /= 2; hi *= 2; }
    return [lo / 1.15, hi * 1.15];
  }
  lo = Math.min(0, lo);
  if (lo === hi) hi = lo + 1;
  return [lo, hi + (hi - lo) * 0.05];
}

export function lineChart(c: Chart): string {
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1] = range(xs, c.xLog ?? false);
  const [y0, y1] = range(ys, c.yLog ?? false);
  const legendRows = Math.ceil(c.series.length / 3);
  const height = H + legendRows * 18;
  const pw = W - L - R, ph = H - T - B;
  const sx = (x: number): number => L + (c.xLog ? Math.log(x / x0) / Math.log(x1 / x0) : (x - x0) / (x1 - x0)) * pw;
  const sy = (y: number): number => T + ph - (c.yLog ? Math.log(y / y0) / Math.log(y1 / y0) : (y - y0) / (y1 - y0)) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${height}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14" font-weight="bold">${esc(c.title)}</text>`,
  ];
  for (const v of ticks(y0, y1, c.yLog ?? false)) {
    const y = sy(v).toFixed(1);
    out.push(`<line x1="${L}" x2="${L + pw}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`, `<text x="${L - 6}" y="${y}" dy="4" text-anchor="end">${fmt(v)}</text>`);
  }
  for (const v of ticks(x0, x1, c.xLog ?? false)) {
    const x = sx(v).toFixed(1);
    out.push(`<line x1="${x}" x2="${x}" y1="${T}" y2="${T + ph}" stroke="#efefef"/>`, `<text x="${x}" y="${T + ph + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  out.push(
    `<rect x="${L}" y="${T}" width="${pw}" height="${ph}" fill="none" stroke="#555"/>`,
    `<text x="${L + pw / 2}" y="${T + ph + 36}" text-anchor="middle">${esc(c.xLabel)}${c.xLog ? ' (log)' : ''}</text>`,
    `<text transform="translate(18 ${T + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}${c.yLog ? ' (log)' : ''}</text>`,
  );
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]!, dash = DASH[i % DASH.length]!;
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!c.xLog || x > 0) && (!c.yLog || y > 0));
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''} points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    const lx = L + (i % 3) * (pw / 3), ly = H - 12 + Math.floor(i / 3) * 18;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`,
      `<text x="${lx + 30}" y="${ly}" dy="4">${esc(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
