/*
 * The legend over the chart (time, O H L C, change, volume of the newest bar, or of the bar
 * under the crosshair while hovering), the document title, and the bar fields of
 * window.tickchart (symbol, tf, lastCandle, candleCount, firstTime, hoverTime).
 */
import { indexOfTime } from './candles.js';

export var MINUS = '\u2212'; // the typographic minus, as the price scale draws it

// `text` (the formatted size of `v`) with the sign of `v`: "+1.20", "−1.20"; a value that
// shows as zero has none to give ("+0.00").
export function signed(v, text) {
  return (v < 0 && /[1-9]/.test(text) ? MINUS : '+') + text;
}

// view: the chart view (static/market/js/chart.js); api: window.tickchart; opts
// (optional): {studyLegend (the element under it; default the page's #study-legend),
// title (default true: the document title names the symbol and price)}.
export function createLegend(legendEl, view, api, opts) {
  opts = opts || {};
  var hovering = false;
  var legendFields = {};
  if (legendEl) {
    legendEl.querySelectorAll('[data-field]').forEach(function (el) {
      legendFields[el.getAttribute('data-field')] = el;
    });
  }
  var volumeFormat = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 2 });
  var formatPrice = view.formatPrice;

  function setField(name, text) {
    if (legendFields[name]) legendFields[name].textContent = text;
  }

  function showLegend(bar, prev) {
    if (!legendEl) return;
    if (!bar) {
      ['time', 'open', 'high', 'low', 'close', 'change', 'volume'].forEach(function (f) { setField(f, '—'); });
      legendEl.removeAttribute('data-direction');
      return;
    }
    setField('time', view.formatTime(bar.time));
    setField('open', formatPrice(bar.open));
    setField('high', formatPrice(bar.high));
    setField('low', formatPrice(bar.low));
    setField('close', formatPrice(bar.close));
    var base = prev !== null && prev !== undefined ? prev : bar.open;
    var diff = bar.close - base;
    var pct = base ? (diff / base) * 100 : 0;
    setField('change', signed(diff, formatPrice(Math.abs(diff))) + ' (' + signed(pct, Math.abs(pct).toFixed(2)) + '%)');
    setField('volume', volumeFormat.format(bar.volume || 0));
    legendEl.setAttribute('data-direction', bar.close >= bar.open ? 'up' : 'down');
  }

  view.chart.subscribeCrosshairMove(function (param) {
    var t = param && param.time !== undefined ? Number(param.time) : null;
    var i = t === null ? -1 : indexOfTime(view.bars, t);
    if (i < 0) {
      hovering = false;
      api.hoverTime = null;
      showLegend(view.lastBar(), view.prevClose());
      return;
    }
    hovering = true;
    api.hoverTime = t;
    showLegend(view.bars[i], i > 0 ? view.bars[i - 1].close : null);
  });

  // After the shown bars changed.
  function publish() {
    var last = view.lastBar();
    api.symbol = view.symbol;
    api.tf = view.tf;
    api.lastCandle = last ? JSON.parse(JSON.stringify(last)) : null;
    api.candleCount = view.bars.length;
    api.firstTime = view.bars.length ? view.bars[0].time : null;
    if (!hovering) showLegend(last, view.prevClose());
    scheduleFit(); // the price scale's width follows the prices
    if (last && opts.title !== false) {
      document.title = view.symbol + ' ' + formatPrice(last.close) + ' · ' + view.tf + ' · TickChart';
    }
  }

  // The legends over the chart (this one, and the study legend under it) stay off the price
  // scale, so its topmost label is never under them, and the price pane's top margin keeps
  // the highest bars below them. Measured: the scale's width and the legends' height vary.
  var boxes = [legendEl, opts.studyLegend || document.getElementById('study-legend')].filter(Boolean);
  var topMargin = null;
  function fitLegends() {
    var wrap = legendEl && legendEl.offsetParent;
    if (!wrap || (view.removed && view.removed())) return;
    var scale = view.chart.priceScale('right', 0).width();
    var room = wrap.clientWidth - scale - legendEl.offsetLeft - 8;
    boxes.forEach(function (box) {
      var px = Math.max(120, Math.floor(room)) + 'px';
      if (box.style.maxWidth !== px) box.style.maxWidth = px;
    });
    var bottom = 0;
    boxes.forEach(function (box) {
      if (box.offsetHeight) bottom = Math.max(bottom, box.offsetTop + box.offsetHeight);
    });
    var panes = view.chart.panes();
    var height = panes.length ? panes[0].getHeight() : 0;
    if (!height) return;
    var margin = Math.min(0.5, Math.max(0.2, (bottom + 6) / height));
    if (topMargin === null || Math.abs(margin - topMargin) > 0.005) {
      topMargin = margin;
      view.chart.priceScale('right', 0).applyOptions({ scaleMargins: { top: margin, bottom: 0.1 } });
    }
  }
  var fitFrame = null;
  function scheduleFit() {
    if (fitFrame !== null || !legendEl) return;
    fitFrame = window.requestAnimationFrame(function () { fitFrame = null; fitLegends(); });
  }
  if (legendEl && window.ResizeObserver) {
    var observer = new ResizeObserver(scheduleFit);
    boxes.forEach(function (box) { observer.observe(box); });
    observer.observe(view.chart.chartElement());
  }

  return { publish: publish };
}
