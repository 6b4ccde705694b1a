// The page in the person's language: their pick (kept in localStorage), else the browser's languages.
// The sentences come from the server's catalogs (GET /i18n/<locale>.json, the same .po files the bots
// use); a sentence a catalog lacks stays English. Every module imports t() from here, so this module's
// top-level await loads the catalog before anything is drawn.

const KEY = "mediabot.language";
export const NAMES = {
  en: "English", es: "Español", pt_BR: "Português (Brasil)", ru: "Русский", uk: "Українська", de: "Deutsch",
  fr: "Français", tr: "Türkçe", id: "Bahasa Indonesia", fa: "فارسی", ar: "العربية",
};

function supported(code) {
  if (!code) return null;
  const [lang, region] = code.replace("-", "_").split("_");
  const exact = region ? `${lang.toLowerCase()}_${region.toUpperCase()}` : lang.toLowerCase();
  if (exact in NAMES) return exact;
  return Object.keys(NAMES).find((loc) => loc.split("_")[0] === lang.toLowerCase()) || null;
}

function picked() {
  try {
    return localStorage.getItem(KEY) || "";
  } catch {
    return "";
  }
}

export function chooseLocale() {
  return supported(picked()) || [...(navigator.languages || []), navigator.language].map(supported).find(Boolean) || "en";
}

export const locale = chooseLocale();
let messages = {};
let plurals = null;
if (locale !== "en") {
  try {
    const response = await fetch(`/i18n/${locale}.json`);
    if (response.ok) messages = (await response.json()).messages || {};
    plurals = new Intl.PluralRules(locale.replace("_", "-"));
  } catch {
    messages = {}; // English, rather than no page
  }
}

// Marks a sentence for the catalogs where it is kept untranslated (translated where it is shown).
export const N_ = (text) => text;

// A sentence in the page's language; `{name}` placeholders filled from `values`.
export function t(text, values = {}) {
  const found = typeof messages[text] === "string" ? messages[text] : text;
  return found.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
}

// The plural form for n ("1 item" / "5 items"; Russian has three, Arabic six).
export function tn(one, many, n, values = {}) {
  const forms = messages[one];
  let text = n === 1 ? one : many;
  if (forms && typeof forms === "object" && plurals) text = forms[plurals.select(n)] || forms.other || text;
  return t(text, { n, ...values });
}

// A number as the page's language writes it.
export function num(n, options = {}) {
  return new Intl.NumberFormat(locale.replace("_", "-"), options).format(n);
}

export function translatePage(root = document) {
  const html = document.documentElement;
  html.lang = locale.replace("_", "-");
  html.dir = locale === "fa" || locale === "ar" ? "rtl" : "ltr";
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  const select = root.getElementById ? root.getElementById("language") : null;
  if (select && select.options.length === 1) {
    for (const [code, name] of Object.entries(NAMES)) select.add(new Option(name, code));
    select.value = picked();
    select.addEventListener("change", () => {
      try {
        if (select.value) localStorage.setItem(KEY, select.value);
        else localStorage.removeItem(KEY);
      } catch {
        // private mode: the choice lasts this page only
      }
      location.reload();
    });
  }
}
