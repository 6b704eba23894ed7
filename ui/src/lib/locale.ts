// WebKitGTK reports the POSIX locale ("C") as navigator.language when LANG is unset, which
// Intl rejects; chart code formats numbers with it at load time. Fall back to en-US then.
// Imported first, so it runs before any module that reads the locale.
try {
  new Intl.NumberFormat(navigator.language);
} catch {
  Object.defineProperty(navigator, "language", { value: "en-US", configurable: true });
  Object.defineProperty(navigator, "languages", { value: ["en-US"], configurable: true });
}
export {};
