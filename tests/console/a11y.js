// The accessibility checks of tests/console/test_accessibility.py, run in the page by Chromium.
// window.a11y.audit() -> {kind: [problem, ...]}; focus() -> the focused element's state; tabbable() -> keys.
window.a11y = {
  audit() {
  const out = {};
  const add = (k, v) => (out[k] = out[k] || []).push(v);
  const desc = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (el.getAttribute('name') ? `[name=${el.getAttribute('name')}]` : '') +
    ` "${(el.innerText || el.value || '').trim().slice(0, 30)}"`;
  const root = document.documentElement;
  // 1.4.10 reflow: the page itself never scrolls sideways; a wide table scrolls in its own focusable region
  if (root.scrollWidth > root.clientWidth) add('reflow', `page is ${root.scrollWidth}px wide in ${root.clientWidth}px`);
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= root.clientWidth + 0.5 || r.left < 0 || el.closest('.scroll')) continue;
    add('reflow', `${desc(el)} ends at ${r.right.toFixed(0)}px`);
    break;
  }
  for (const region of document.querySelectorAll('.scroll')) {
    if (region.tabIndex !== 0 || !region.getAttribute('role') || !(region.getAttribute('aria-label') || region.getAttribute('aria-labelledby')))
      add('reflow', `scrolling region ${desc(region)} is not a named, focusable region`);
  }
  // 3.1.1
  if (!/^en\b/.test(root.lang)) add('lang', `html lang is ${JSON.stringify(root.lang)}`);
  // 1.3.1 / 3.3.2 labels
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const named = [...el.labels].some(l => l.textContent.trim()) || (el.getAttribute('aria-label') || '').trim()
      || el.getAttribute('aria-labelledby');
    if (!named) add('label', desc(el));
  }
  // 2.5.8 target size (minimum): links in a sentence are excepted
  const shown = el => { const r = el.getBoundingClientRect(); const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.right > 0 && r.bottom > -window.scrollY; };
  const inSentence = a => {
    const block = a.parentElement.closest('p, li, dd, td, blockquote, h1, h2, h3, legend, label') || a.parentElement;
    return block.innerText.replace(a.innerText, '').replace(/[\s·←→()|,:;.-]/g, '').length > 0;
  };
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
    if (!shown(el) || (el.tagName === 'A' && inSentence(el))) continue;
    const r = el.getBoundingClientRect();
    if (r.width < 24 || r.height < 24) add('target', `${desc(el)} is ${r.width.toFixed(1)}x${r.height.toFixed(1)}`);
  }
  // 1.4.3 / 1.4.11 contrast as rendered
  const rgba = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
  const backdrop = el => { for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || c[3] > 0.5) return c.slice(0, 3); } return [255, 255, 255]; };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg') || !shown(el) || el.closest('.sr-only')) continue;
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own && !['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON'].includes(el.tagName)) continue;
    const s = getComputedStyle(el);
    const size = parseFloat(s.fontSize), bold = parseInt(s.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const r = ratio(rgba(s.color).slice(0, 3), backdrop(el));
    if (r < need) add('contrast', `${desc(el)} ${s.color} on ${backdrop(el)} is ${r.toFixed(2)}:1`);
    if (['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName) && el.type !== 'radio' && el.type !== 'checkbox') {
      const edge = ratio(rgba(s.borderTopColor).slice(0, 3), backdrop(el.parentElement));
      if (edge < 3 && parseFloat(s.borderTopWidth) > 0) add('contrast', `${desc(el)} border is ${edge.toFixed(2)}:1`);
    }
  }
  // 1.3.1 / 2.4.6 headings and landmarks
  const h1 = document.querySelectorAll('h1');
  if (h1.length !== 1) add('headings', `${h1.length} h1`);
  let level = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const n = +h.tagName[1];
    if (n > level + 1) add('headings', `${h.tagName} "${h.innerText.trim()}" after h${level}`);
    level = n;
  }
  if (document.querySelectorAll('main').length !== 1) add('landmarks', 'not exactly one main');
  for (const el of document.querySelectorAll('[aria-labelledby]')) {
    for (const id of el.getAttribute('aria-labelledby').split(/\s+/)) {
      const target = document.getElementById(id);
      if (!target || target === el || !target.innerText.trim()) add('landmarks', `${desc(el)} labelled by ${id}`);
    }
  }
  if (!document.title.trim()) add('landmarks', 'no title');
  // 1.3.1 tables
  for (const t of document.querySelectorAll('table')) {
    const cap = t.querySelector('caption');
    if (!(cap && cap.textContent.trim()) && !t.getAttribute('aria-label') && !t.getAttribute('aria-labelledby'))
      add('tables', `table.${t.className} has no caption`);
    for (const th of t.querySelectorAll('th'))
      if (!['col', 'row'].includes(th.getAttribute('scope'))) add('tables', `th "${th.innerText.trim()}" has no scope`);
  }
  return out;
  },
  focus() {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const s = getComputedStyle(el), r = el.getBoundingClientRect();
  const cx = Math.min(Math.max(r.left + r.width / 2, 0), innerWidth - 1), cy = Math.min(Math.max(r.top + r.height / 2, 0), innerHeight - 1);
  const hit = document.elementFromPoint(cx, cy);
  return {
    key: el.tagName.toLowerCase() + '#' + (el.id || '') + '|' + (el.getAttribute('href') || el.getAttribute('name') || '') + '|' + (el.value || el.innerText || '').trim().slice(0, 40),
    outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2,
    shadow: s.boxShadow !== 'none',
    inView: r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth,
    covered: !!hit && hit !== el && !el.contains(hit) && !hit.contains(el),
    skip: el.classList.contains('skip'),
  };
  },
  tabbable() {
  return [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]')]
  .filter(el => el.tabIndex >= 0 && !el.disabled && el.getClientRects().length && getComputedStyle(el).visibility !== 'hidden'
    && !(el.closest('details:not([open])') && el.tagName !== 'SUMMARY'))
  .filter(el => !(el.type === 'radio' && !el.checked && document.querySelector(`input[type=radio][name="${el.name}"]:checked`)
    && el.form === document.querySelector(`input[type=radio][name="${el.name}"]:checked`).form))
  .map(el => el.tagName.toLowerCase() + '#' + (el.id || '') + '|' + (el.getAttribute('href') || el.getAttribute('name') || '') + '|' + (el.value || el.innerText || '').trim().slice(0, 40));
  },
};
