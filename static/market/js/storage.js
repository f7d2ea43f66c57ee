/*
 * localStorage that never throws (storage disabled, full, or a sandboxed frame): the page's
 * saved theme, chart type and watchlist. static/market/theme.js reads the theme key itself.
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
