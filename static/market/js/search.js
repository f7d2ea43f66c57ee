/*
 * The symbol search combobox (#symbol-search, #search-results): debounced queries to
 * config.api_symbols, the listbox with keyboard navigation (arrows, Enter, Escape), and "/"
 * anywhere to focus it. Choosing a symbol is the caller's (onChoose).
 */

// apiUrl: config.api_symbols; onChoose(ticker): a result was picked; opts (optional; a
// layout has one search per pane): {idPrefix (of the options' ids; default 'search-opt-'),
// slash (default true: "/" focuses this search)}.
export function createSearch(searchInput, resultsEl, apiUrl, onChoose, opts) {
  opts = opts || {};
  var prefix = opts.idPrefix || 'search-opt-';
  var search = { items: [], active: -1, timer: null, seq: 0 };

  function closeResults() {
    resultsEl.hidden = true;
    searchInput.setAttribute('aria-expanded', 'false');
    searchInput.removeAttribute('aria-activedescendant');
    search.active = -1;
  }

  function renderResults() {
    resultsEl.textContent = '';
    search.items.forEach(function (s, i) {
      var li = document.createElement('li');
      li.id = prefix + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', i === search.active ? 'true' : 'false');
      li.dataset.ticker = s.ticker;
      var t = document.createElement('span');
      t.className = 'opt-ticker';
      t.textContent = s.ticker;
      var n = document.createElement('span');
      n.className = 'opt-name';
      n.textContent = s.name || '';
      li.appendChild(t);
      li.appendChild(n);
      li.addEventListener('mousedown', function (e) {
        e.preventDefault();
        onChoose(s.ticker);
      });
      resultsEl.appendChild(li);
    });
    if (!search.items.length) {
      var empty = document.createElement('li');
      empty.className = 'opt-empty';
      empty.textContent = 'No matching symbols';
      resultsEl.appendChild(empty);
    }
    resultsEl.hidden = false;
    searchInput.setAttribute('aria-expanded', 'true');
    if (search.active >= 0) searchInput.setAttribute('aria-activedescendant', prefix + search.active);
    else searchInput.removeAttribute('aria-activedescendant');
  }

  function runSearch() {
    var q = searchInput.value.trim();
    var seq = ++search.seq;
    if (!q) {
      closeResults();
      return;
    }
    var url = new URL(apiUrl || '/api/symbols', window.location.href);
    url.searchParams.set('q', q);
    fetch(url.toString(), { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : { symbols: [] }; })
      .then(function (body) {
        if (seq !== search.seq) return;
        search.items = body.symbols || [];
        search.active = search.items.length ? 0 : -1;
        renderResults();
      })
      .catch(function () { /* offline: keep what is shown */ });
  }

  if (searchInput && resultsEl) {
    searchInput.addEventListener('input', function () {
      window.clearTimeout(search.timer);
      search.timer = window.setTimeout(runSearch, 120);
    });
    searchInput.addEventListener('keydown', function (e) {
      var n = search.items.length;
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        if (resultsEl.hidden || !n) return;
        e.preventDefault();
        search.active = (search.active + (e.key === 'ArrowDown' ? 1 : n - 1)) % n;
        renderResults();
        var el = document.getElementById(prefix + search.active);
        if (el) el.scrollIntoView({ block: 'nearest' });
      } else if (e.key === 'Enter') {
        e.preventDefault();
        if (!resultsEl.hidden && search.active >= 0 && search.items[search.active]) {
          onChoose(search.items[search.active].ticker);
        } else {
          window.clearTimeout(search.timer);
          runSearch();
        }
      } else if (e.key === 'Escape') {
        closeResults();
      }
    });
    searchInput.addEventListener('blur', function () { window.setTimeout(closeResults, 150); });
    if (opts.slash !== false) document.addEventListener('keydown', function (e) {
      var tag = (e.target && e.target.tagName) || '';
      if (e.key === '/' && tag !== 'INPUT' && tag !== 'SELECT' && tag !== 'TEXTAREA') {
        e.preventDefault();
        searchInput.focus();
      }
    });
  }

  return { close: closeResults };
}
