// Sorts a table by the column whose heading is clicked (or Enter): numbers
// by their data-v value, text in the reader's collation; again reverses.
document.querySelectorAll("table.sort").forEach(function (t) {
  t.querySelectorAll("th").forEach(function (th, i) {
    th.tabIndex = 0;
    var go = function () {
      var dir = th.dataset.dir === "desc" ? "asc" : "desc";
      t.querySelectorAll("th").forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = dir;
      var num = th.classList.contains("n");
      var body = t.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (r) {
        var c = r.cells[i];
        return num ? parseFloat(c.dataset.v) : c.textContent;
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var r = num ? x - y : x.localeCompare(y);
        return dir === "asc" ? r : -r;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    };
    th.addEventListener("click", go);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") go(); });
  });
});
