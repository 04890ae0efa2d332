# Generate the fixed reference datasets used by the LMM golden tests.
#
# Run once (make_golden.sh only calls this when a dataset CSV is missing); the
# committed CSVs, not this script, are the source of truth for the tests.
# Values are rounded to 2 decimals so that R and Python parse identical numbers.
#
# Usage: Rscript make_datasets.R <output_dir>

args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[1] else "datasets"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

suppressPackageStartupMessages(library(lme4))

write_csv <- function(df, name) {
  path <- file.path(out_dir, name)
  write.csv(df, path, row.names = FALSE, na = "")
  message("wrote ", path, " (", nrow(df), " rows)")
}

# (a) lme4's sleepstudy, as shipped with lme4 ------------------------------
data("sleepstudy", package = "lme4")
ss <- sleepstudy[, c("Reaction", "Days", "Subject")]
ss$Subject <- as.character(ss$Subject)
write_csv(ss, "sleepstudy.csv")

# Simulator for a pilot with participants measured at baseline (y0) and at
# several follow-ups (long format, follow-up rows only, y missing after
# dropout). Randomisation is by site (cluster = TRUE) or by participant.
simulate_pilot <- function(seed, n_sites, n_part, sd_site, sd_part, sd_res,
                           times = c("t1", "t2"), effect = c(2, 3),
                           time_eff = c(0, 1), drop = c(0.12, 0.25),
                           cluster = TRUE, n_missing_y0 = 2) {
  set.seed(seed)
  # unbalanced site sizes: multinomial share with Dirichlet-like weights
  w <- rgamma(n_sites, shape = 2)
  size <- as.vector(rmultinom(1, n_part - 3 * n_sites, w / sum(w))) + 3
  site <- rep(sprintf("S%02d", seq_len(n_sites)), times = size)
  site_arm <- sample(rep(c("control", "intervention"), length.out = n_sites))
  names(site_arm) <- sprintf("S%02d", seq_len(n_sites))
  participant <- sprintf("P%03d", seq_len(n_part))
  arm <- if (cluster) unname(site_arm[site]) else
    sample(rep(c("control", "intervention"), length.out = n_part))
  u_site <- rnorm(n_sites, 0, sd_site)
  names(u_site) <- names(site_arm)
  u_part <- rnorm(n_part, 0, sd_part)
  y0 <- round(50 + u_site[site] + 1.2 * u_part + rnorm(n_part, 0, 6), 2)
  # monotone dropout
  last <- rep(length(times), n_part)
  for (k in seq_along(times)) {
    gone <- runif(n_part) < drop[k] & last >= k
    last[gone] <- pmin(last[gone], k - 1)
  }
  rows <- list()
  for (k in seq_along(times)) {
    mu <- 15 + 0.7 * y0 + time_eff[k] + (arm == "intervention") * effect[k] +
      u_site[site] + u_part
    y <- round(mu + rnorm(n_part, 0, sd_res), 2)
    y[last < k] <- NA
    rows[[k]] <- data.frame(site = site, participant = participant, arm = arm,
                            time = times[k], y0 = y0, y = y)
  }
  d <- do.call(rbind, rows)
  if (n_missing_y0 > 0) {
    miss <- sample(participant, n_missing_y0)
    d$y0[d$participant %in% miss] <- NA
  }
  d <- d[order(d$site, d$participant, d$time), ]
  rownames(d) <- NULL
  d
}

# (b)/(c) cluster pilot: 12 sites, 150 participants, 2 follow-ups ----------
pilot <- simulate_pilot(seed = 20261122, n_sites = 12, n_part = 150,
                        sd_site = 3, sd_part = 5, sd_res = 6)
write_csv(pilot, "cluster_pilot.csv")

# (d) a cluster pilot whose site variance is estimated as exactly zero.
# Search seeds (deterministically) for the first one where lme4 reports a
# singular fit with theta_site == 0 for the nested model.
seed <- 100
repeat {
  d <- simulate_pilot(seed = seed, n_sites = 8, n_part = 80, sd_site = 0,
                      sd_part = 4, sd_res = 6)
  fit <- lmer(y ~ arm * time + y0 + (1 | site) + (1 | participant),
              data = d, REML = TRUE,
              control = lmerControl(check.conv.singular = "ignore"))
  th <- getME(fit, "theta")
  if (th[["site.(Intercept)"]] == 0 && th[["participant.(Intercept)"]] > 0.1) break
  seed <- seed + 1
}
message("singular dataset uses seed ", seed)
write_csv(d, "singular_pilot.csv")

# (e) individually randomised trial, 3 follow-ups, participant intercept only
indiv <- simulate_pilot(seed = 4242, n_sites = 1, n_part = 100, sd_site = 0,
                        sd_part = 5, sd_res = 7, times = c("t1", "t2", "t3"),
                        effect = c(1, 2.5, 3), time_eff = c(0, 0.5, 1),
                        drop = c(0.1, 0.1, 0.1), cluster = FALSE,
                        n_missing_y0 = 0)
indiv$site <- NULL
write_csv(indiv, "individual_trial.csv")
