/* The 404 page (templates/market/not_found.html): the chart page's symbol search, which
 * opens the chosen symbol's chart. Outside js/ because it is an entry of its own. */
import { createSearch } from './js/search.js';

var config = JSON.parse(document.getElementById('search-config').textContent);
createSearch(document.getElementById('symbol-search'), document.getElementById('search-results'),
  config.api_symbols, function (ticker) {
    window.location.assign(config.chart_path + encodeURIComponent(ticker).replace(/%3A/gi, ':') + '/');
  });
