# Reference numbers for the value for money of a single-arm study (analysis/value.py; checked by
# tests/test_value.py, test_single_arm_value_for_money_tables_match_r), computed in R from the raw files of the embedded example and its
# config, without any Pathways code:
#  * config/single_arm.yaml read with the yaml package: the cost items, price year, value-for-money
#    outcomes and time point, the WELLBY settings, the primary outcome and time point, the waves;
#  * the NHS Cost Inflation Index (pay and prices) shipped as analysis/data/nhscii_pay_prices.csv,
#    the index value_for_money uses (the rate labelled Y is the rise into year Y): each item's
#    factor is the product of (1 + rate / 100) over the years after its price year up to the
#    analysis price year;
#  * the questionnaires data/raw/single_arm/wave_*.csv scored here from the published facts
#    (not from Pathways' tables): SWEMWBS metric = the Rasch conversion (Stewart-Brown et al. 2009)
#    of the raw sum of all seven items (1-5; any item missing: no score), typed below from the
#    developers' reference and compared with the copy Pathways ships; ONS4 life satisfaction =
#    question 1 (0-10) on its own; UCLA-3 total = sum of the three items (1-3), ONS anxiety =
#    question 4;
#  * participants enrolled = rows of participants.csv; completing = participants with the primary
#    outcome scored at the value-for-money time point;
#  * the change from baseline: lmerTest::lmer(y ~ time + site_id + (1 | participant_id), REML)
#    over every participant x wave (time a factor, baseline the reference; the centre a fixed
#    factor, as the single-arm design adds it), Satterthwaite df, Wald-t interval at
#    outcomes.confidence_level (lmerTest::contest), with a tight optimiser tolerance so the
#    optimum is pinned down;
#  * gain = change turned towards improvement (lower is better for loneliness and anxiety); cost
#    per point = cost per participant / gain, given only when the gain's interval lies wholly
#    above zero; WELLBY value = change x participants enrolled x years x value per WELLBY
#    (HM Treasury 2021: 10,000 / 13,000 / 16,000 in 2019 prices unless the config says otherwise).
# Output (17 significant digits): golden/vfm_cost_buildup.csv, golden/vfm_cost_per_participant.csv,
# golden/vfm_cost_per_point.csv, golden/vfm_wellby.csv (the columns of the pipeline's tables that
# carry numbers, with their keys), golden/vfm_versions.txt.
# Usage: Rscript value_golden.R <repo root> <golden dir>
args <- commandArgs(trailingOnly = TRUE)
root <- if (length(args) >= 1) args[1] else "."
golden <- if (length(args) >= 2) args[2] else file.path(root, "tests/reference/golden")
suppressPackageStartupMessages({ library(yaml); library(lme4); library(lmerTest) })

cfg <- yaml::read_yaml(file.path(root, "config/single_arm.yaml"))
v <- cfg$value_for_money
stopifnot(isTRUE(v$enabled), cfg$design$type == "single_arm")
or_else <- function(x, y) if (is.null(x)) y else x
raw <- file.path(root, cfg$data$raw_dir)
primary <- cfg$primary$outcome
timepoint <- or_else(v$timepoint, cfg$primary$timepoint)
outcomes <- if (length(v$outcomes)) unlist(v$outcomes) else primary
level <- or_else(cfg$outcomes$confidence_level, 0.95)
fmt <- function(d) {
  num <- vapply(d, is.numeric, TRUE)
  d[num] <- lapply(d[num], function(x) ifelse(is.na(x), NA, sprintf("%.17g", x)))
  d
}
write_golden <- function(d, name) write.csv(fmt(d), file.path(golden, name), row.names = FALSE, na = "")

# ---- 1. cost build-up -----------------------------------------------------------------------
index <- read.csv(file.path(root, "analysis/data/nhscii_pay_prices.csv"), colClasses = c(year = "character"))
start <- function(y) as.integer(substr(y, 1, 4))
factor_to <- function(from, to) {
  # the rate of year Y takes prices of the year before Y into Y
  if (from == to) return(1)
  lo <- min(start(from), start(to)); hi <- max(start(from), start(to))
  yrs <- index$year[start(index$year) > lo & start(index$year) <= hi]
  stopifnot(length(yrs) == hi - lo)
  f <- prod(1 + index$pay_and_prices_pct[match(yrs, index$year)] / 100)
  if (start(from) < start(to)) f else 1 / f
}
costs <- v$costs
buildup <- data.frame(
  item = vapply(costs, function(c) c$item, ""),
  amount_gbp = vapply(costs, function(c) as.numeric(c$amount_gbp), 0),
  price_year = vapply(costs, function(c) c$price_year, ""))
buildup$inflation_factor <- vapply(buildup$price_year, factor_to, 0, to = v$price_year)
buildup$amount_gbp_analysis_year <- buildup$amount_gbp * buildup$inflation_factor
buildup$analysis_price_year <- v$price_year
total <- sum(buildup$amount_gbp_analysis_year)
write_golden(buildup, "vfm_cost_buildup.csv")

# ---- 2. scores from the raw questionnaires ---------------------------------------------------
# SWEMWBS raw sum 7..35 -> metric score (Stewart-Brown et al. 2009; developers' reference table)
swemwbs_metric_of <- c(7.00, 9.51, 11.25, 12.40, 13.33, 14.08, 14.75, 15.32, 15.84, 16.36, 16.88,
                       17.43, 17.98, 18.59, 19.25, 19.98, 20.73, 21.54, 22.35, 23.21, 24.11, 25.03,
                       26.02, 27.03, 28.13, 29.31, 30.70, 32.55, 35.00)
shipped <- read.csv(file.path(root, "analysis/instruments/data/swemwbs_conversion.csv"))
stopifnot(identical(as.numeric(shipped$raw), as.numeric(7:35)),
          isTRUE(all.equal(as.numeric(shipped$metric), swemwbs_metric_of, tolerance = 0)))
items <- function(d, prefix, k, lo, hi) {
  m <- as.matrix(d[, paste0(prefix, seq_len(k)), drop = FALSE])
  ok <- is.na(m) | (m >= lo & m <= hi & m == round(m))
  if (!all(ok)) stop(prefix, " items out of range")
  m
}
score <- function(d) {
  sw <- rowSums(items(d, "swemwbs_", 7, 1, 5))  # NA unless all seven answered
  ons <- items(d, "ons4_", 4, 0, 10)
  data.frame(participant_id = d$participant_id,
             swemwbs_metric = swemwbs_metric_of[sw - 6],
             ucla3_total = rowSums(items(d, "ucla3_", 3, 1, 3)),
             ons4_life_satisfaction = ons[, 1], ons4_anxiety = ons[, 4])
}
lower_is_better <- c("ucla3_total", "ons4_anxiety")

parts <- read.csv(file.path(raw, cfg$data$participants), colClasses = "character")
stopifnot(!anyDuplicated(parts$participant_id))
waves <- vapply(cfg$data$waves, function(w) w$timepoint, "")
long <- do.call(rbind, lapply(cfg$data$waves, function(w) {
  d <- read.csv(file.path(raw, w$file), colClasses = c(participant_id = "character"))
  stopifnot(!anyDuplicated(d$participant_id), all(d$participant_id %in% parts$participant_id))
  s <- score(d)
  # every participant enrolled has a row at every wave (the outcome missing when not measured)
  s <- s[match(parts$participant_id, s$participant_id), ]
  s$participant_id <- parts$participant_id
  s$site_id <- parts$site_id
  s$time <- w$timepoint
  s
}))
long$time <- factor(long$time, levels = waves)
long$site_id <- factor(long$site_id)

# ---- 3.-5. per case: participants, the change and the cost per point, the WELLBY value ----------
# case "example": the config as it stands; "every_outcome_<tp>": value_for_money.outcomes set to every
# analysed outcome and value_for_money.timepoint to <tp> (at m6 the loneliness and anxiety intervals
# include no change: no ratio; at m12 they are falls, gains on scores where lower is better)
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 0,
                                    maxeval = 1e5))
analysed <- unique(c(primary, unlist(cfg$outcomes$secondary)))
fits <- setNames(lapply(analysed, function(y) {
  d <- long[!is.na(long[[y]]), ]
  d$y <- d[[y]]
  list(d = d, fit = lmerTest::lmer(y ~ time + site_id + (1 | participant_id), data = d, REML = TRUE,
                                   control = tight))
}), analysed)
change_of <- function(y, tp) {
  f <- fits[[y]]
  L <- as.numeric(names(fixef(f$fit)) == paste0("time", tp))
  stopifnot(sum(L) == 1)
  ct <- contest(f$fit, L, joint = FALSE, confint = TRUE, level = level)
  list(change = ct$Estimate, ci_low = ct$lower, ci_high = ct$upper, se = ct$`Std. Error`, df = ct$df,
       n_change = sum(f$d$time == tp), n_model = nrow(f$d))
}
cases <- list(example = list(tp = timepoint, outcomes = outcomes),
              every_outcome_m12 = list(tp = "m12", outcomes = analysed),
              every_outcome_m6 = list(tp = "m6", outcomes = analysed))
enrolled <- nrow(parts)
pp_rows <- list(); pt_rows <- list(); wb_rows <- list()
for (case in names(cases)) {
  tp <- cases[[case]]$tp
  completing <- sum(!is.na(long[long$time == tp, primary]))
  pp_rows[[case]] <- data.frame(
    case = case, measure = c("Cost per participant enrolled", "Cost per participant completing"),
    participants = c(enrolled, completing), total_cost_gbp = total,
    cost_per_participant_gbp = total / c(enrolled, completing), price_year = v$price_year)
  for (y in cases[[case]]$outcomes) {
    ch <- change_of(y, tp)
    sgn <- if (y %in% lower_is_better) -1 else 1
    g <- sgn * ch$change
    glo <- min(sgn * ch$ci_low, sgn * ch$ci_high); ghi <- max(sgn * ch$ci_low, sgn * ch$ci_high)
    status <- if (glo > 0) "ratio" else if (ghi < 0) "worsening" else "interval includes no change"
    for (base in c("enrolled", "completing")) {
      n <- if (base == "enrolled") enrolled else completing
      cpp <- total / n
      pt_rows[[length(pt_rows) + 1]] <- data.frame(
        case = case, outcome = y, timepoint = tp, direction = if (sgn < 0) "lower" else "higher",
        change = ch$change, ci_low = ch$ci_low, ci_high = ch$ci_high, n_change = ch$n_change,
        gain = g, gain_ci_low = glo, gain_ci_high = ghi, ratio_status = status, base = base,
        participants = n, cost_per_participant_gbp = cpp,
        cost_per_point_gbp = if (status == "ratio") cpp / g else NA,
        cost_per_point_at_gain_ci_high_gbp = if (status == "ratio") cpp / ghi else NA,
        cost_per_point_at_gain_ci_low_gbp = if (status == "ratio") cpp / glo else NA,
        price_year = v$price_year, se = ch$se, df = ch$df, n_model = ch$n_model)
    }
  }
  # WELLBY value of the change in life satisfaction
  w <- v$wellby
  ls <- change_of(w$outcome, tp)
  years <- as.numeric(w$duration_years)
  uprate <- as.numeric(or_else(w$uprating_factor, 1))
  central <- as.numeric(or_else(w$value, 13000))
  wb <- data.frame(
    case = case,
    scenario = c("low value", "central", "high value", "central value, lower CI of change",
                 "central value, upper CI of change"),
    ls_change = c(ls$change, ls$change, ls$change, ls$ci_low, ls$ci_high),
    participants = enrolled, duration_years = years,
    value_per_wellby = uprate * c(as.numeric(or_else(w$low, 10000)), central,
                                  as.numeric(or_else(w$high, 16000)), central, central))
  wb$wellbys <- wb$ls_change * enrolled * years
  wb$social_value_gbp <- wb$wellbys * wb$value_per_wellby
  wb_rows[[case]] <- wb
}
write_golden(do.call(rbind, pp_rows), "vfm_cost_per_participant.csv")
write_golden(do.call(rbind, pt_rows), "vfm_cost_per_point.csv")
write_golden(do.call(rbind, wb_rows), "vfm_wellby.csv")

writeLines(c(R.version.string, paste("yaml", packageVersion("yaml")), paste("lme4", packageVersion("lme4")),
             paste("lmerTest", packageVersion("lmerTest")), paste("Matrix", packageVersion("Matrix")),
             paste("nloptr", packageVersion("nloptr")),
             "optimizer: nloptwrap BOBYQA xtol_abs=1e-13 ftol_abs=1e-15"),
           file.path(golden, "vfm_versions.txt"))
