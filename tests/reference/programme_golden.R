# Reference numbers for the community programme design (tests/test_programme.py), computed in R
# from the raw files, independently of Pathways:
#  * survey change on the embedded example (data/raw/c2_programme/survey.csv): different
#    residents before and after, so Welch's two-sample t (t.test(after, before)) per score; ONS4
#    scores are the items themselves, SWEMWBS metric = the published Rasch conversion of the raw
#    sum of 7 complete items (analysis/instruments/data/swemwbs_conversion.csv);
#  * a paired survey (respondents surveyed twice, some only once) simulated here with a fixed
#    seed -> datasets/programme_paired_survey.csv; paired t.test on the respondents with both
#    questionnaires;
#  * cumulative monitoring totals by quarter (all neighbourhoods): sum indicators add the
#    quarters, latest indicators take the quarter's own total; the number of neighbourhood-
#    quarters not recorded (blank cells) is counted (never read as zero); funding_gbp is the
#    funding table's total.  One neighbourhood joins late (truth.json late_start, declared in
#    config/c2_programme.yaml): its quarters before the start have no row and are outside the
#    programme, neither added nor counted as not recorded.  The script checks that these are
#    the only absent neighbourhood-quarters.
# Usage: Rscript programme_golden.R <repo root> <datasets dir> <golden dir>
args <- commandArgs(trailingOnly = TRUE)
root <- args[1]; datasets <- args[2]; golden <- args[3]
raw <- file.path(root, "data/raw/c2_programme")
conv <- read.csv(file.path(root, "analysis/instruments/data/swemwbs_conversion.csv"))

scores <- function(d) {
  sw <- as.matrix(d[, paste0("swemwbs_", 1:7)])
  total <- rowSums(sw)  # NA unless all 7 items were answered
  data.frame(respondent_id = d$respondent_id, wave = d$wave,
             ons4_life_satisfaction = d$ons4_1, ons4_worthwhile = d$ons4_2,
             ons4_happiness = d$ons4_3, ons4_anxiety = d$ons4_4,
             swemwbs_total = total, swemwbs_metric = conv$metric[match(total, conv$raw)])
}
outcomes <- c("ons4_life_satisfaction", "ons4_worthwhile", "ons4_happiness", "ons4_anxiety",
              "swemwbs_total", "swemwbs_metric")
row_of <- function(case, y, tt, n_b, n_a, m_b, m_a, method) {
  data.frame(case = case, outcome = y, n_before = n_b, n_after = n_a, mean_before = m_b,
             mean_after = m_a, change = unname(if (length(tt$estimate) == 2) tt$estimate[1] - tt$estimate[2]
                                                 else tt$estimate),
             ci_low = tt$conf.int[1], ci_high = tt$conf.int[2], df = unname(tt$parameter),
             p_value = tt$p.value, method = method, r_version = R.version.string)
}

# 1. Welch on the example
s <- scores(read.csv(file.path(raw, "survey.csv"), stringsAsFactors = FALSE))
out <- list()
for (y in outcomes) {
  a <- na.omit(s[s$wave == "after", y]); b <- na.omit(s[s$wave == "before", y])
  tt <- t.test(a, b, var.equal = FALSE, conf.level = 0.95)
  out[[length(out) + 1]] <- row_of("example_welch", y, tt, length(b), length(a), mean(b), mean(a),
                                   "Welch two-sample t")
}

# 2. a paired survey: 90 residents answer twice, 20 only before, 12 only after
set.seed(20261205)
n2 <- 90; n_b1 <- 20; n_a1 <- 12
item <- function(latent, lo, hi, sd) pmin(hi, pmax(lo, round(latent + rnorm(length(latent), 0, sd))))
make <- function(ids, wave, eta) {
  d <- data.frame(respondent_id = ids, neighbourhood = "Bentilee", wave = wave)
  for (k in 1:4) d[[paste0("ons4_", k)]] <- item(if (k == 4) 4.6 - 2 * (eta - 2.6) else 5 + 2.6 * (eta - 2.6), 0, 10, 1.2)
  for (k in 1:7) d[[paste0("swemwbs_", k)]] <- item(eta, 1, 5, 0.55)
  d
}
eta <- rnorm(n2 + n_b1 + n_a1, 2.9, 0.6)
both <- sprintf("P%03d", 1:n2)
before <- make(c(both, sprintf("B%03d", 1:n_b1)), "before", eta[1:(n2 + n_b1)])
after <- make(c(both, sprintf("A%03d", 1:n_a1)), "after", c(eta[1:n2], eta[(n2 + n_b1 + 1):(n2 + n_b1 + n_a1)]) + 0.15)
paired <- rbind(before, after)
paired$ons4_2[5] <- NA  # one item missing: that respondent's pair is left out for worthwhile
paired$swemwbs_3[200] <- NA
write.csv(paired, file.path(datasets, "programme_paired_survey.csv"), row.names = FALSE, na = "")
s <- scores(paired)
for (y in outcomes) {
  b <- s[s$wave == "before", c("respondent_id", y)]; a <- s[s$wave == "after", c("respondent_id", y)]
  m <- na.omit(merge(b, a, by = "respondent_id", suffixes = c("_b", "_a")))
  tt <- t.test(m[[paste0(y, "_a")]], m[[paste0(y, "_b")]], paired = TRUE, conf.level = 0.95)
  out[[length(out) + 1]] <- row_of("paired", y, tt, nrow(m), nrow(m), mean(m[[paste0(y, "_b")]]),
                                   mean(m[[paste0(y, "_a")]]), "paired t")
}
write.csv(do.call(rbind, out), file.path(golden, "programme_survey.csv"), row.names = FALSE)

# 3. cumulative monitoring totals on the example
mon <- read.csv(file.path(raw, "monitoring.csv"), stringsAsFactors = FALSE)
fun <- read.csv(file.path(raw, "funding.csv"), stringsAsFactors = FALSE)
quarters <- sort(unique(mon$quarter))
late <- jsonlite::fromJSON(file.path(raw, "truth.json"))$late_start
grid <- expand.grid(neighbourhood = sort(unique(mon$neighbourhood)), quarter = quarters, stringsAsFactors = FALSE)
absent <- grid[!paste(grid$neighbourhood, grid$quarter) %in% paste(mon$neighbourhood, mon$quarter), ]
stopifnot(all(absent$neighbourhood == late$neighbourhood), all(absent$quarter < late$start),
          nrow(absent) == sum(quarters < late$start))
stopifnot(!any(fun$neighbourhood == late$neighbourhood & fun$quarter < late$start))
latest <- c("volunteers_regular", "volunteers_occasional")
rows <- list()
for (ind in c(setdiff(names(mon), c("neighbourhood", "quarter")), "funding_gbp")) {
  if (ind == "funding_gbp") {
    per_q <- sapply(quarters, function(q) sum(fun$amount_gbp[fun$quarter == q]))
    miss <- rep(0, length(quarters))
  } else {
    per_q <- sapply(quarters, function(q) sum(mon[mon$quarter == q, ind], na.rm = TRUE))
    miss <- sapply(quarters, function(q) sum(is.na(mon[mon$quarter == q, ind])))
  }
  cum <- if (ind %in% latest) per_q else cumsum(per_q)
  cmiss <- if (ind %in% latest) miss else cumsum(miss)
  rows[[length(rows) + 1]] <- data.frame(indicator = ind, quarter = quarters, value = per_q,
                                         cumulative = cum, missing_cells = cmiss)
}
write.csv(do.call(rbind, rows), file.path(golden, "programme_cumulative.csv"), row.names = FALSE)

# 4. neighbourhood-level targets of the example (config/c2_programme.yaml, read with yaml): each
#    is rated on that neighbourhood's own running total from its declared start (a sum indicator:
#    the recorded counts added over its quarters up to the target's period; a latest indicator:
#    the period's own count), with the config's RAG bands; 'incomplete' when a quarter of the
#    neighbourhood up to the period was not recorded, 'not yet due' after the last quarter monitored.
cfg <- yaml::read_yaml(file.path(root, "config/c2_programme.yaml"))$programme
aggr <- setNames(sapply(cfg$indicators, function(i) if (is.null(i$aggregation)) "sum" else i$aggregation),
                 sapply(cfg$indicators, function(i) i$id))
starts <- setNames(sapply(cfg$neighbourhoods, function(h) if (is.null(h$start)) quarters[1] else h$start),
                   sapply(cfg$neighbourhoods, function(h) h$id))
trows <- list()
for (t in cfg$targets) {
  if (is.null(t$neighbourhood)) next
  h <- t$neighbourhood; ind <- t$indicator
  qs <- quarters[quarters >= starts[[h]] & quarters <= t$period]
  cells <- sapply(qs, function(q) { v <- mon[mon$neighbourhood == h & mon$quarter == q, ind]
                                    if (length(v) == 0) NA else v })
  miss <- sum(is.na(cells))
  achieved <- if (aggr[[ind]] == "sum") sum(cells, na.rm = TRUE) else cells[length(cells)]
  pct <- 100 * achieved / t$target
  rag <- if (t$period > max(quarters)) "not yet due" else if (miss > 0) "incomplete" else
    if (achieved >= cfg$rag$green * t$target) "green" else if (achieved >= cfg$rag$amber * t$target) "amber" else "red"
  trows[[length(trows) + 1]] <- data.frame(indicator = ind, neighbourhood = h, period = t$period,
                                           target = t$target, achieved = achieved,
                                           percent_of_target = pct, rag = rag, missing_cells = miss)
}
stopifnot(length(trows) >= 2)
write.csv(do.call(rbind, trows), file.path(golden, "programme_neighbourhood_targets.csv"), row.names = FALSE)
