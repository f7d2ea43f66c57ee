/*
 * The legend over the chart (time, O H L C, change, volume of the newest bar, or of the bar
 * under the crosshair while hovering), the document title, and the bar fields of
 * window.tickchart (symbol, tf, lastCandle, candleCount, firstTime, hoverTime).
 */
import { indexOfTime } from './candles.js';

// view: the chart view (static/market/js/chart.js); api: window.tickchart.
export function createLegend(legendEl, view, api) {
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
    setField('change', (diff >= 0 ? '+' : '') + formatPrice(diff) + ' (' + (diff >= 0 ? '+' : '') + pct.toFixed(2) + '%)');
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
    if (last) {
      document.title = view.symbol + ' ' + formatPrice(last.close) + ' · ' + view.tf + ' · TickChart';
    }
  }

  return { publish: publish };
}
