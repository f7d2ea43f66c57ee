/* Sets the saved (or the system's) colour theme before the page paints: no flash. */
(function () {
  'use strict';
  var theme = null;
  try {
    theme = window.localStorage.getItem('tickchart.theme');
  } catch (e) { /* storage disabled */ }
  if (theme !== 'light' && theme !== 'dark') {
    theme = window.matchMedia && window.matchMedia('(prefers-color-scheme: light)').matches ? 'light' : 'dark';
  }
  document.documentElement.setAttribute('data-theme', theme);
})();
