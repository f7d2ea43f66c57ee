/*
 * Where drawings are kept (issue 12): on the server for a signed-in user (/api/drawings,
 * every change saved at once; `drawing` socket frames from the user's other tabs applied
 * live), in localStorage per symbol for a visitor (the API answers visitors 401).
 *
 * The store owns the list (items, oldest first) and calls changed() after every change.
 * A drawing still being created has a temporary id until the server answers; changes to
 * it wait for that answer.
 */
import { storageGet, storageSet } from '../storage.js';

var LOCAL_PREFIX = 'tickchart.drawings.';

function csrfToken() {
  var meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') : '';
}

function copy(d) {
  return { id: d.id, symbol: d.symbol, kind: d.kind, points: d.points.map(function (p) {
    return { time: p.time, price: p.price };
  }), style: { color: d.style.color, width: d.style.width, text: d.style.text } };
}

// opts: {symbol, server (true: signed in), changed(), saved() (a server write finished),
// failed(message)}.
export function createStore(opts) {
  var items = [];
  var mode = opts.server ? 'server' : 'local';
  var seq = 0;
  var pending = {}; // temporary id -> Promise of the server's id
  var gone = {}; // ids deleted here: a late upsert frame must not bring them back
  var held = []; // frames of unknown drawings while creates are pending: maybe this tab's own

  function indexOf(id) {
    for (var i = 0; i < items.length; i++) if (String(items[i].id) === String(id)) return i;
    return -1;
  }

  function upsert(d) {
    if (gone[d.id]) return;
    var i = indexOf(d.id);
    if (i >= 0) items[i] = copy(d);
    else items.push(copy(d));
  }

  function saveLocal() {
    storageSet(LOCAL_PREFIX + opts.symbol, JSON.stringify(items));
  }

  function request(method, url, body) {
    var headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') headers['X-CSRFToken'] = csrfToken();
    return fetch(url, { method: method, headers: headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (r) {
        if (r.status === 204) return null;
        return r.json().then(function (data) {
          if (!r.ok) throw new Error((data && data.error) || ('HTTP ' + r.status));
          return data;
        });
      });
  }

  function load() {
    if (mode === 'local') {
      var raw = storageGet(LOCAL_PREFIX + opts.symbol);
      try {
        items = (raw ? JSON.parse(raw) : []).filter(function (d) { return d && d.points && d.style; });
      } catch (e) {
        items = [];
      }
      opts.changed();
      return Promise.resolve();
    }
    return request('GET', '/api/drawings?symbol=' + encodeURIComponent(opts.symbol))
      .then(function (body) {
        items = [];
        body.drawings.forEach(upsert);
        opts.changed();
      })
      .catch(function (err) { opts.failed('drawings could not be loaded: ' + err.message); });
  }

  // draft: {kind, points, style}; returns the drawing as now listed (temporary id on the server).
  function create(draft) {
    var d = copy({ id: (mode === 'local' ? 'local-' : 'tmp-') + Date.now().toString(36) + '-' + (++seq),
      symbol: opts.symbol, kind: draft.kind, points: draft.points, style: draft.style });
    items.push(d);
    opts.changed();
    if (mode === 'local') {
      saveLocal();
      return d;
    }
    var tmp = d.id;
    pending[tmp] = request('POST', '/api/drawings', { symbol: opts.symbol, kind: d.kind, points: d.points, style: d.style })
      .then(function (saved) {
        var i = indexOf(tmp);
        if (gone[tmp]) { // deleted while it was being created
          gone[saved.id] = true;
          return request('DELETE', '/api/drawings/' + saved.id).then(function () {
            settled(tmp);
            return saved.id;
          });
        }
        if (i >= 0) items[i] = copy(saved); // in its place in the list
        else upsert(saved);
        opts.renamed(tmp, saved.id);
        settled(tmp);
        opts.saved();
        return saved.id;
      })
      .catch(function (err) {
        var i = indexOf(tmp);
        if (i >= 0) items.splice(i, 1);
        settled(tmp);
        opts.failed('drawing not saved: ' + err.message);
        return null;
      });
    return d;
  }

  // A create finished: once none is pending, the held frames apply (those of this tab's
  // creates are known by now, so nothing shows twice).
  function settled(tmp) {
    delete pending[tmp];
    if (Object.keys(pending).length === 0) {
      var frames = held;
      held = [];
      frames.forEach(applyOne);
    }
    opts.changed();
  }

  function serverId(id) {
    return pending[id] ? pending[id] : Promise.resolve(id);
  }

  // changes: {points?, style?} (style keys merge).
  function update(id, changes) {
    var i = indexOf(id);
    if (i < 0) return;
    var d = items[i];
    if (changes.points) d.points = changes.points.map(function (p) { return { time: p.time, price: p.price }; });
    if (changes.style) d.style = Object.assign({}, d.style, changes.style);
    opts.changed();
    if (mode === 'local') {
      saveLocal();
      return;
    }
    serverId(id).then(function (realId) {
      if (realId === null) return null; // its create failed
      return request('PATCH', '/api/drawings/' + realId, changes).then(function (saved) {
        upsert(saved);
        opts.changed();
        opts.saved();
      });
    }).catch(function (err) { opts.failed('drawing not saved: ' + err.message); });
  }

  function remove(id) {
    var i = indexOf(id);
    if (i < 0) return;
    items.splice(i, 1);
    gone[id] = true;
    opts.changed();
    if (mode === 'local') {
      saveLocal();
      return;
    }
    if (pending[id]) return; // create() deletes it once the server has answered
    request('DELETE', '/api/drawings/' + id).then(function () { opts.saved(); })
      .catch(function (err) { opts.failed('drawing not deleted: ' + err.message); });
  }

  // A `drawing` frame from the socket (this user's other tabs, and echoes of this one's).
  function apply(msg) {
    if (mode !== 'server' || !msg.drawing || msg.drawing.symbol !== opts.symbol) return;
    if (msg.op !== 'delete' && indexOf(msg.drawing.id) < 0 && Object.keys(pending).length) {
      held.push(msg);
      return;
    }
    applyOne(msg);
    opts.changed();
  }

  function applyOne(msg) {
    if (msg.op === 'delete') {
      var i = indexOf(msg.drawing.id);
      if (i >= 0) items.splice(i, 1);
      gone[msg.drawing.id] = true;
    } else {
      upsert(msg.drawing);
    }
  }

  return {
    mode: function () { return mode; },
    items: function () { return items; },
    get: function (id) { var i = indexOf(id); return i >= 0 ? items[i] : null; },
    load: load,
    create: create,
    update: update,
    remove: remove,
    apply: apply,
  };
}
