// Runs before the first paint (a classic script in <head>): applies the theme the operator chose
// last time, so a dark page does not flash white. Without a saved choice the CSS follows
// prefers-color-scheme. The toggle itself lives in theme.js.
(function () {
  try {
    var saved = window.localStorage.getItem('bb-theme');
    if (saved === 'light' || saved === 'dark') {
      document.documentElement.setAttribute('data-theme', saved);
    }
  } catch (e) {
    // Storage disabled (privacy mode): the system theme applies.
  }
})();
