// What the live pages (runs.js, run.js, pipelines.js) print the same way the server does:
// a duration as the templates' `duration` filter writes it ("4.2s", "3m07s", "2h05m").
"use strict";

window.ChachamlLive = {
  duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 60) return seconds.toFixed(1) + "s";
    const total = Math.floor(seconds);
    const hours = Math.floor(total / 3600);
    const minutes = Math.floor((total % 3600) / 60);
    const secs = total % 60;
    const two = (n) => String(n).padStart(2, "0");
    return hours ? `${hours}h${two(minutes)}m` : `${minutes}m${two(secs)}s`;
  },
};
