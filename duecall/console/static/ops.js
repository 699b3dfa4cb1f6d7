// The live part of a campaign's page (#live) is read again every few seconds. The page view was
// logged once; these reads are not. A failed read leaves the part as it was until the next one.
"use strict";
const REFRESH_MS = 3000;
const live = document.getElementById("live");
if (live !== null && live.dataset.src) {
  setInterval(async () => {
    try {
      const response = await fetch(live.dataset.src, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) {
        live.innerHTML = await response.text();
      }
    } catch (error) {
      // the next tick tries again
    }
  }, REFRESH_MS);
}
