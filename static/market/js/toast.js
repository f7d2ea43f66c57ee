/*
 * Toasts: short notices stacked in one live region (#toasts), newest at the bottom, each
 * dismissed by its close button, by Escape while focused, or after `ms`. A notice that
 * needs attention (an alert fired) is role=alert; others role=status. At most MAX stay.
 */
var MAX = 5;

export function createToasts(container) {
  function dismiss(el) {
    if (el.parentNode) el.parentNode.removeChild(el);
  }

  // show(title, body, {urgent, ms, id}): the toast element. A toast with the same id as
  // one on screen is not shown twice (two sockets, a retried delivery).
  function show(title, body, opts) {
    opts = opts || {};
    if (!container) return null;
    if (opts.id) {
      var same = container.querySelector('[data-toast-id="' + CSS.escape(String(opts.id)) + '"]');
      if (same) return same;
    }
    var el = document.createElement('div');
    el.className = 'toast' + (opts.urgent ? ' toast-urgent' : '');
    el.setAttribute('role', opts.urgent ? 'alert' : 'status');
    el.setAttribute('tabindex', '-1');
    if (opts.id) el.setAttribute('data-toast-id', String(opts.id));
    var text = document.createElement('div');
    text.className = 'toast-text';
    var strong = document.createElement('strong');
    strong.className = 'toast-title';
    strong.textContent = title;
    text.appendChild(strong);
    if (body) {
      var p = document.createElement('span');
      p.className = 'toast-body';
      p.textContent = body;
      text.appendChild(p);
    }
    var close = document.createElement('button');
    close.type = 'button';
    close.className = 'toast-close';
    close.setAttribute('aria-label', 'Dismiss notification');
    close.textContent = '×';
    close.addEventListener('click', function () { dismiss(el); });
    el.addEventListener('keydown', function (e) { if (e.key === 'Escape') dismiss(el); });
    el.appendChild(text);
    el.appendChild(close);
    container.appendChild(el);
    while (container.children.length > MAX) dismiss(container.firstElementChild);
    var timer = null;
    function arm() { timer = window.setTimeout(function () { dismiss(el); }, opts.ms || 8000); }
    // Hovering or focusing a toast keeps it (time to read it, WCAG 2.2.1).
    el.addEventListener('mouseenter', function () { window.clearTimeout(timer); });
    el.addEventListener('mouseleave', arm);
    el.addEventListener('focusin', function () { window.clearTimeout(timer); });
    arm();
    return el;
  }

  return { show: show };
}
