// Light/dark theme. Without a saved choice the page follows prefers-color-scheme (in CSS); the
// button saves an explicit choice in localStorage (applied before paint by theme-init.js).

const KEY = 'bb-theme';
// The choice for this page when localStorage is unavailable (privacy mode).
let memory = null;

function saved() {
  try {
    const v = window.localStorage.getItem(KEY);
    if (v === 'light' || v === 'dark') return v;
  } catch {
    // fall through to the in-memory choice
  }
  return memory;
}

function systemTheme() {
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** The theme in force now. */
export function currentTheme() {
  return saved() || systemTheme();
}

function apply(button) {
  const theme = currentTheme();
  const choice = saved();
  if (choice) document.documentElement.setAttribute('data-theme', choice);
  else document.documentElement.removeAttribute('data-theme');
  button.setAttribute('aria-pressed', theme === 'dark' ? 'true' : 'false');
  button.textContent = theme === 'dark' ? 'Light theme' : 'Dark theme';
  button.title = choice
    ? `Switch to the ${theme === 'dark' ? 'light' : 'dark'} theme (your choice is remembered)`
    : `Following the system theme; switch to the ${theme === 'dark' ? 'light' : 'dark'} theme`;
}

/** Wires the toggle button; follows system changes while no choice is saved. */
export function initTheme(button) {
  apply(button);
  button.addEventListener('click', () => {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    memory = next;
    try {
      window.localStorage.setItem(KEY, next);
    } catch {
      // Not remembered across visits, but applied for this page.
    }
    apply(button);
  });
  if (window.matchMedia) {
    window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => apply(button));
  }
}
