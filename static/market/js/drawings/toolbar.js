/*
 * The drawing toolbar (issue 12, templates/market/chart.html #draw-bar): a button per tool
 * (aria-pressed), the magnet, the colour picker, the note text, delete, and the keyboard
 * shortcuts (Alt + a letter, by physical key so macOS's Option characters do not matter;
 * main.js and the other modules use only "/" and Escape). Its state is on the element for
 * tests: data-tool, data-selected, data-magnet, data-mode.
 *
 * "Alert on this line" (#draw-alert, issue 13) is enabled for a selected line drawing kept on
 * the server; it dispatches a bubbling `drawing-alert` event {detail: {id, kind}}, which
 * static/market/js/alerts.js answers with the alert dialog set to that line.
 */
export var SHORTCUTS = { KeyH: 'hline', KeyJ: 'hray', KeyT: 'trend', KeyY: 'ray', KeyR: 'rect', KeyF: 'fib', KeyN: 'text' };
var MAGNET_KEY = 'KeyM';
export var LINE_KINDS = ['hline', 'hray', 'trend', 'ray']; // the drawings an alert can follow

// hooks: {tool(kind or null), magnet(on), color(hex), text(string), remove()}.
export function createToolbar(bar, hooks) {
  var buttons = bar.querySelectorAll('[data-draw-tool]');
  var magnetBtn = bar.querySelector('#draw-magnet');
  var colorInput = bar.querySelector('#draw-color');
  var textInput = bar.querySelector('#draw-text');
  var deleteBtn = bar.querySelector('#draw-delete');
  var alertBtn = bar.querySelector('#draw-alert');
  var alertLine = null; // the selected line drawing an alert can follow, or null

  buttons.forEach(function (b) {
    b.addEventListener('click', function () {
      var kind = b.getAttribute('data-draw-tool');
      hooks.tool(bar.getAttribute('data-tool') === kind ? null : kind);
    });
  });
  if (magnetBtn) magnetBtn.addEventListener('click', function () { hooks.magnet(bar.getAttribute('data-magnet') !== 'on'); });
  if (colorInput) colorInput.addEventListener('input', function () { hooks.color(colorInput.value); });
  if (textInput) textInput.addEventListener('change', function () { hooks.text(textInput.value); });
  if (deleteBtn) deleteBtn.addEventListener('click', function () { hooks.remove(); });
  if (alertBtn) {
    alertBtn.addEventListener('click', function () {
      if (!alertLine) return;
      bar.dispatchEvent(new CustomEvent('drawing-alert', { bubbles: true, detail: { id: alertLine.id, kind: alertLine.kind } }));
    });
  }

  document.addEventListener('keydown', function (e) {
    if (!e.altKey || e.ctrlKey || e.metaKey) return;
    var tag = (e.target && e.target.tagName) || '';
    if (tag === 'INPUT' && e.target.type === 'text') return;
    if (SHORTCUTS[e.code]) {
      e.preventDefault();
      var kind = SHORTCUTS[e.code];
      hooks.tool(bar.getAttribute('data-tool') === kind ? null : kind);
    } else if (e.code === MAGNET_KEY) {
      e.preventDefault();
      hooks.magnet(bar.getAttribute('data-magnet') !== 'on');
    }
  });

  // Reflect the state: {tool, selected (a drawing or null), magnet, mode}.
  function render(s) {
    bar.setAttribute('data-tool', s.tool || '');
    bar.setAttribute('data-selected', s.selected ? String(s.selected.id) : '');
    bar.setAttribute('data-magnet', s.magnet ? 'on' : 'off');
    bar.setAttribute('data-mode', s.mode);
    buttons.forEach(function (b) {
      b.setAttribute('aria-pressed', b.getAttribute('data-draw-tool') === s.tool ? 'true' : 'false');
    });
    if (magnetBtn) magnetBtn.setAttribute('aria-pressed', s.magnet ? 'true' : 'false');
    if (deleteBtn) deleteBtn.disabled = !s.selected;
    alertLine = s.selected && LINE_KINDS.indexOf(s.selected.kind) >= 0 && /^[0-9]+$/.test(String(s.selected.id))
      ? s.selected : null; // a server id: a drawing still being saved has a temporary one
    if (alertBtn) {
      alertBtn.hidden = bar.getAttribute('data-signed-in') !== 'true';
      alertBtn.disabled = !alertLine;
    }
    if (colorInput && s.selected && document.activeElement !== colorInput) colorInput.value = s.selected.style.color;
    if (textInput) {
      var note = s.tool === 'text' || (s.selected && s.selected.kind === 'text');
      textInput.hidden = !note;
      if (s.selected && s.selected.kind === 'text' && document.activeElement !== textInput) {
        textInput.value = s.selected.style.text;
      }
    }
  }

  return {
    render: render,
    color: function () { return colorInput ? colorInput.value : '#2962ff'; },
    text: function () { return textInput && textInput.value.trim() ? textInput.value : 'Note'; },
  };
}
