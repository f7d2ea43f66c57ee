/*
 * What the page keeps: localStorage that never throws (storage disabled, full, or a
 * sandboxed frame) for the saved theme, chart type and watchlist (static/market/theme.js
 * reads the theme key itself), and the URL, rewritten in place with readable `:` and `,`.
 */

export var WATCH_KEY = 'tickchart.watchlist';
export var TYPE_KEY = 'tickchart.seriesType';
export var THEME_KEY = 'tickchart.theme';

export function storageGet(key) {
  try {
    return window.localStorage.getItem(key);
  } catch (e) {
    return null;
  }
}

export function storageSet(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch (e) { /* storage disabled or full */ }
}

// Replace the page's URL (no new history entry), keeping tickers and study lists readable
// (?studies=ema:20,rsi:14 rather than ema%3A20%2Crsi%3A14).
export function replaceUrl(url) {
  window.history.replaceState(window.history.state, '', url.toString().replace(/%3A/gi, ':').replace(/%2C/gi, ','));
}
