/**
 * The page shell shared by the fleet and host reports: one self-contained HTML file. Inline CSS, one
 * inline script (allowed by its sha256 in the Content-Security-Policy, nothing else may run), the data
 * embedded as JSON, no external resource of any kind (default-src 'none').
 */
import { createHash } from 'node:crypto';
import { esc, jsonForScript } from './escape.js';

export const COLORS = {
  enforced: '#1a7f37',
  v1: '#cf222e',
  disabled: '#6e7781',
  ready: '#0969da',
  notReady: '#cf222e',
  unknown: '#bf8700',
  broken: '#82071e',
  allow: '#1a7f37',
  deny: '#cf222e',
  accent: '#0969da',
  grid: '#d0d7de',
  muted: '#57606a',
} as const;

const CSS = `
:root{--fg:#1f2328;--muted:#57606a;--border:#d0d7de;--bg:#ffffff;--panel:#f6f8fa;--accent:#0969da;
--green:${COLORS.enforced};--red:${COLORS.v1};--gray:${COLORS.disabled};--amber:${COLORS.unknown}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans","Liberation Sans",sans-serif}
header.top{background:#24292f;color:#fff;padding:20px 32px}
header.top h1{margin:0;font-size:22px;font-weight:600;letter-spacing:.2px}
header.top p{margin:4px 0 0;color:#d0d7de;font-size:13px}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px}
section{margin:0 0 32px;break-inside:avoid-page}
h2{font-size:18px;font-weight:600;margin:0 0 4px;padding-bottom:6px;border-bottom:1px solid var(--border)}
h3{font-size:15px;font-weight:600;margin:18px 0 8px}
p.note{color:var(--muted);margin:6px 0 12px;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(132px,1fr));gap:12px;margin:16px 0}
.card{border:1px solid var(--border);border-radius:8px;padding:12px 14px;background:var(--panel)}
.card .label{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.4px}
.card .value{font-size:26px;font-weight:600;font-variant-numeric:tabular-nums;line-height:1.2;margin-top:4px}
.card .sub{font-size:12px;color:var(--muted)}
.card.good .value{color:var(--green)}.card.bad .value{color:var(--red)}.card.warn .value{color:var(--amber)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:24px}
.chartwrap{overflow-x:auto}
.chart{width:100%;min-width:600px;height:auto;display:block;font-family:inherit}
.chart text{font-size:12px;fill:var(--fg)}
.chart .axis text,.chart text.muted{fill:var(--muted);font-size:11px}
.legend{display:flex;flex-wrap:wrap;gap:14px;font-size:12px;color:var(--muted);margin:4px 0 8px;padding:0;list-style:none}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.tablewrap{overflow-x:auto;border:1px solid var(--border);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--border);vertical-align:top}
th{background:var(--panel);font-weight:600;white-space:nowrap;position:sticky;top:0}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:last-child td{border-bottom:0}
tbody tr:hover{background:#f6f8fa}
th[data-key]{cursor:pointer;user-select:none}
th[data-key]::after{content:" \\2195";color:#8c959f;font-weight:400}
th[aria-sort=ascending]::after{content:" \\25B2";color:var(--fg)}
th[aria-sort=descending]::after{content:" \\25BC";color:var(--fg)}
.sev{display:inline-block;padding:0 7px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.sev-high{background:${COLORS.v1}}.sev-medium{background:#bc4c00}.sev-low{background:${COLORS.unknown}}.sev-info{background:${COLORS.disabled}}
.pill{display:inline-block;padding:0 7px;border-radius:10px;font-size:12px;border:1px solid var(--border)}
.pill.deny{color:#fff;background:${COLORS.deny};border-color:${COLORS.deny}}.pill.allow{color:#fff;background:${COLORS.allow};border-color:${COLORS.allow}}
.toolbar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}
.toolbar input,.toolbar select{font:inherit;padding:5px 8px;border:1px solid var(--border);border-radius:6px;background:#fff}
.toolbar input{min-width:260px;flex:1 1 260px}
.toolbar .count{color:var(--muted);font-size:12px}
td.mono,td.nowrap,td code{white-space:nowrap}
td.path{white-space:normal;min-width:200px}
.sub2.nowrap{white-space:nowrap}
.sub2{display:block;color:var(--muted);font-size:12px;white-space:normal}
code,.mono{font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12px}
.empty{padding:14px;color:var(--muted);border:1px dashed var(--border);border-radius:8px}
footer{color:var(--muted);font-size:12px;border-top:1px solid var(--border);padding-top:10px}
@media (max-width:640px){.chart{min-width:880px}main{padding:16px}header.top{padding:16px}.grid2{grid-template-columns:1fr}.card .value{font-size:22px}}
@media print{
 @page{margin:12mm}
 body{font-size:11px}
 header.top{background:none;color:#000;padding:0 0 8px;border-bottom:2px solid #000}
 header.top p{color:#333}
 main{max-width:none;padding:12px 0}
 .toolbar{display:none}
 th[data-key]::after{content:none}
 .tablewrap{overflow:visible;border:0}
 th{position:static}
 section{break-inside:auto}
 .chart,.cards,.card{break-inside:avoid}
 .chart{min-width:0}
 tr{break-inside:avoid}
 .sev,.pill,.card{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
`;

/**
 * Sorting and filtering of every table marked data-sortable, a few lines of vanilla JS. Cells may carry
 * data-v (the sort value); numeric columns are marked data-type="num" on the header. A table may
 * have a filter input (data-filter-for) and selects (data-filter-col) in its toolbar, and a count
 * element (data-count-for).
 */
const SCRIPT = `(function(){
"use strict";
function txt(td){return td?(td.getAttribute("data-v")!==null?td.getAttribute("data-v"):td.textContent||""):""}
function setup(table){
 var tbody=table.tBodies[0];if(!tbody)return;
 var heads=table.tHead?table.tHead.rows[0].cells:[];
 var rows=Array.prototype.slice.call(tbody.rows);
 var id=table.id;
 var input=document.querySelector('input[data-filter-for="'+id+'"]');
 var selects=Array.prototype.slice.call(document.querySelectorAll('select[data-filter-for="'+id+'"]'));
 var count=document.querySelector('[data-count-for="'+id+'"]');
 function apply(){
  var q=input?input.value.trim().toLowerCase():"";var shown=0;
  rows.forEach(function(r){
   var ok=!q||r.textContent.toLowerCase().indexOf(q)!==-1;
   selects.forEach(function(s){var c=r.cells[+s.getAttribute("data-filter-col")];var v=c?(c.getAttribute("data-f")||(c.textContent||"").trim()):"";if(ok&&s.value&&v!==s.value)ok=false});
   r.hidden=!ok;if(ok)shown++;
  });
  if(count)count.textContent=shown+" of "+rows.length+" shown";
 }
 Array.prototype.forEach.call(heads,function(th,col){
  if(!th.hasAttribute("data-key"))return;
  th.tabIndex=0;
  function sort(){
   var dir=th.getAttribute("aria-sort")==="ascending"?"descending":"ascending";
   Array.prototype.forEach.call(heads,function(h){h.removeAttribute("aria-sort")});
   th.setAttribute("aria-sort",dir);
   var num=th.getAttribute("data-type")==="num";var m=dir==="ascending"?1:-1;
   rows.sort(function(a,b){var x=txt(a.cells[col]),y=txt(b.cells[col]);
    var c=num?(parseFloat(x)||0)-(parseFloat(y)||0):x.localeCompare(y);return c*m});
   rows.forEach(function(r){tbody.appendChild(r)});
  }
  th.addEventListener("click",sort);
  th.addEventListener("keydown",function(e){if(e.key==="Enter"||e.key===" "){e.preventDefault();sort()}});
 });
 if(input)input.addEventListener("input",apply);
 selects.forEach(function(s){s.addEventListener("change",apply)});
 apply();
}
Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"),setup);
document.documentElement.setAttribute("data-ready","1");
})();`;

const SCRIPT_HASH = createHash('sha256').update(SCRIPT, 'utf8').digest('base64');

export const CONTENT_SECURITY_POLICY = `default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-${SCRIPT_HASH}'; base-uri 'none'; form-action 'none'`;

export interface PageOptions {
  title: string;
  subtitle: string;
  /** The sections, already rendered (escaped). */
  body: string;
  /** The document the page shows, embedded as JSON (id "report-data"). */
  data: unknown;
  footer: string;
}

export function renderPage(p: PageOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${esc(CONTENT_SECURITY_POLICY)}">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="imdsguard">
<link rel="icon" href="data:,">
<title>${esc(p.title)}</title>
<style>${CSS}</style>
</head>
<body>
<header class="top"><h1>${esc(p.title)}</h1><p>${esc(p.subtitle)}</p></header>
<main>
${p.body}
<footer>${esc(p.footer)}</footer>
</main>
<script type="application/json" id="report-data">${jsonForScript(p.data)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

/** An overview card. */
export function card(
  label: string,
  value: string,
  testid: string,
  opts: { sub?: string; tone?: 'good' | 'bad' | 'warn' } = {},
): string {
  return `<div class="card${opts.tone ? ` ${opts.tone}` : ''}"><div class="label">${esc(label)}</div><div class="value" data-testid="${esc(testid)}">${esc(value)}</div>${opts.sub ? `<div class="sub">${esc(opts.sub)}</div>` : ''}</div>`;
}

export function legend(items: ReadonlyArray<readonly [string, string]>): string {
  return `<ul class="legend">${items.map(([name, color]) => `<li><i style="background:${esc(color)}"></i>${esc(name)}</li>`).join('')}</ul>`;
}
