//! Structural tests of `report.html`: it parses as balanced HTML, shows
//! the key numbers, escapes log text, hides absent keys.

use super::html;
