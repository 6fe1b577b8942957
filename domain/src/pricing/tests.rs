//! Pricing tables: every billing period against every kind of discount, with and without tax.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn eur(input: &str) -> Money {
    Money::from_decimal_str(input, Currency::EUR).unwrap()
}

fn percent(input: &str) -> Percent {
    Percent::parse(input).unwrap()
}

/// 7.00 a month; 5 % off a quarter, 39.00 for half a year, 15 % off a year; 0.012 an hour.
fn plan_prices() -> PriceTable {
    PriceTable::new(
        eur("0.012"),
        eur("7.00"),
        PeriodPrice::Discount {
            percent: percent("5"),
        },
        PeriodPrice::Price {
            amount: eur("39.00"),
        },
        PeriodPrice::Discount {
            percent: percent("15"),
        },
    )
    .unwrap()
}

fn custom_pricing() -> CustomPricing {
    CustomPricing::new(
        UnitPrices {
            vcpu: eur("3.00"),
            memory_gib: eur("1.50"),
            disk_gib: eur("0.05"),
            ipv4: eur("0.50"),
            traffic_gib: eur("0"),
        },
        ResourceBounds {
            min: Resources {
                vcpus: 1,
                memory_mib: 1024,
                disk_gib: 10,
                ipv4: 0,
                traffic_gib: 0,
            },
            max: Resources {
                vcpus: 32,
                memory_mib: 131_072,
                disk_gib: 2_000,
                ipv4: 8,
                traffic_gib: 20_000,
            },
        },
        PeriodDiscounts {
            quarterly: percent("3"),
            semiannual: percent("6"),
            annual: percent("10"),
        },
    )
    .unwrap()
}

fn custom_config() -> Resources {
    Resources {
        vcpus: 2,
        memory_mib: 4096,
        disk_gib: 40,
        ipv4: 1,
        traffic_gib: 1000,
    }
}

fn discount(kind: &str) -> Option<AppliedDiscount> {
    let value = match kind {
        "none" => return None,
        "10%" => DiscountValue::PercentOff {
            percent: percent("10"),
        },
        "2.50" => DiscountValue::AmountOff {
            amount: eur("2.50"),
        },
        other => panic!("no discount {other}"),
    };
    Some(AppliedDiscount {
        code: "SPRING".into(),
        value,
    })
}

fn vat(rate: &str) -> TaxRate {
    TaxRate {
        country: Some(Country::parse("DE").unwrap()),
        rate: percent(rate),
    }
}

fn plan_quote(period: BillingPeriod, discount_kind: &str, tax: TaxRate) -> Quote {
    let prices = plan_prices();
    quote(&PricingRequest {
        offer: Offer::Plan {
            name: "S-2",
            prices: &prices,
        },
        billing_period: period,
        discount: discount(discount_kind),
        tax,
    })
    .unwrap()
}

#[test]
fn a_plan_is_priced_for_every_period_and_every_discount_with_vat_shown_separately() {
    use BillingPeriod::*;
    // period, discount, subtotal, discount, tax (19 %), total
    let table = [
        (Hourly, "none", "0.01", "0.00", "0.00", "0.01"),
        (Hourly, "10%", "0.01", "0.00", "0.00", "0.01"),
        (Hourly, "2.50", "0.01", "0.01", "0.00", "0.00"),
        (Monthly, "none", "7.00", "0.00", "1.33", "8.33"),
        (Monthly, "10%", "7.00", "0.70", "1.20", "7.50"),
        (Monthly, "2.50", "7.00", "2.50", "0.86", "5.36"),
        (Quarterly, "none", "19.95", "0.00", "3.79", "23.74"),
        (Quarterly, "10%", "19.95", "2.00", "3.41", "21.36"),
        (Quarterly, "2.50", "19.95", "2.50", "3.32", "20.77"),
        (Semiannual, "none", "39.00", "0.00", "7.41", "46.41"),
        (Semiannual, "10%", "39.00", "3.90", "6.67", "41.77"),
        (Semiannual, "2.50", "39.00", "2.50", "6.94", "43.44"),
        (Annual, "none", "71.40", "0.00", "13.57", "84.97"),
        (Annual, "10%", "71.40", "7.14", "12.21", "76.47"),
        (Annual, "2.50", "71.40", "2.50", "13.09", "81.99"),
    ];
    for (period, kind, subtotal, off, tax, total) in table {
        let quote = plan_quote(period, kind, vat("19"));

        let case = format!("{period} with discount {kind}");
        assert_eq!(quote.subtotal, eur(subtotal), "subtotal of {case}");
        assert_eq!(quote.discount, eur(off), "discount of {case}");
        assert_eq!(quote.net, eur(subtotal).checked_sub(eur(off)).unwrap());
        assert_eq!(quote.tax_amount, eur(tax), "tax of {case}");
        assert_eq!(quote.total, eur(total), "total of {case}");
        assert_eq!(quote.lines.len(), 1);
        assert_eq!(quote.billing_period, period);
        assert_eq!(
            quote.discount_code.as_deref(),
            (kind != "none").then_some("SPRING")
        );
    }
}

#[test]
fn without_a_tax_rate_the_total_is_the_net() {
    for period in BillingPeriod::ALL {
        let quote = plan_quote(period, "10%", TaxRate::none());

        assert!(quote.tax_amount.is_zero());
        assert_eq!(quote.total, quote.net);
        assert_eq!(quote.tax.country, None);
    }
}

#[test]
fn a_plan_line_keeps_the_exact_unit_price_and_rounds_only_its_amount() {
    let quote = plan_quote(BillingPeriod::Hourly, "none", TaxRate::none());

    assert_eq!(quote.lines[0].unit_price, eur("0.012"));
    assert_eq!(quote.lines[0].amount, eur("0.01"));
    assert_eq!(quote.lines[0].description, "S-2, first hour");
}

#[test]
fn a_custom_configuration_is_priced_per_unit_for_every_period() {
    use BillingPeriod::*;
    // period, vCPU, memory, disk, IPv4, traffic line amounts, subtotal
    let table = [
        (Hourly, ["0.01", "0.01", "0.00", "0.00", "0.00"], "0.02"),
        (Monthly, ["6.00", "6.00", "2.00", "0.50", "0.00"], "14.50"),
        (
            Quarterly,
            ["17.46", "17.46", "5.82", "1.46", "0.00"],
            "42.20",
        ),
        (
            Semiannual,
            ["33.84", "33.84", "11.28", "2.82", "0.00"],
            "81.78",
        ),
        (
            Annual,
            ["64.80", "64.80", "21.60", "5.40", "0.00"],
            "156.60",
        ),
    ];
    let pricing = custom_pricing();
    for (period, amounts, subtotal) in table {
        let quote = quote(&PricingRequest {
            offer: Offer::Custom {
                resources: custom_config(),
                pricing: &pricing,
            },
            billing_period: period,
            discount: None,
            tax: TaxRate::none(),
        })
        .unwrap();

        let got: Vec<Money> = quote.lines.iter().map(|line| line.amount).collect();
        let want: Vec<Money> = amounts.iter().map(|a| eur(a)).collect();
        assert_eq!(got, want, "lines of {period}");
        assert_eq!(quote.subtotal, eur(subtotal), "subtotal of {period}");
        let quantities: Vec<u32> = quote.lines.iter().map(|line| line.quantity).collect();
        assert_eq!(quantities, vec![2, 4, 40, 1, 1000]);
    }
}

#[test]
fn custom_resources_of_zero_get_no_line() {
    let pricing = custom_pricing();
    let resources = Resources {
        ipv4: 0,
        traffic_gib: 0,
        ..custom_config()
    };

    let quote = quote(&PricingRequest {
        offer: Offer::Custom {
            resources,
            pricing: &pricing,
        },
        billing_period: BillingPeriod::Monthly,
        discount: None,
        tax: TaxRate::none(),
    })
    .unwrap();

    assert_eq!(quote.lines.len(), 3);
}

#[test]
fn a_custom_configuration_outside_the_bounds_names_every_resource_at_fault() {
    let pricing = custom_pricing();
    let resources = Resources {
        vcpus: 0,
        memory_mib: 1536,
        disk_gib: 5_000,
        ipv4: 1,
        traffic_gib: 0,
    };

    let error = quote(&PricingRequest {
        offer: Offer::Custom {
            resources,
            pricing: &pricing,
        },
        billing_period: BillingPeriod::Monthly,
        discount: None,
        tax: TaxRate::none(),
    })
    .unwrap_err();

    let PricingError::OutOfBounds(problems) = &error else {
        panic!("expected out of bounds, got {error:?}");
    };
    assert_eq!(
        problems,
        &vec![
            (
                Resource::Vcpus,
                ResourceProblem::OutOfBounds { min: 1, max: 32 }
            ),
            (Resource::MemoryMib, ResourceProblem::NotWholeGib),
            (
                Resource::DiskGib,
                ResourceProblem::OutOfBounds {
                    min: 10,
                    max: 2_000
                }
            ),
        ]
    );
    assert_eq!(error.code(), "configuration_out_of_bounds");
}

#[test]
fn a_fixed_discount_in_another_currency_is_refused() {
    let prices = plan_prices();

    let error = quote(&PricingRequest {
        offer: Offer::Plan {
            name: "S-2",
            prices: &prices,
        },
        billing_period: BillingPeriod::Monthly,
        discount: Some(AppliedDiscount {
            code: "USD5".into(),
            value: DiscountValue::AmountOff {
                amount: Money::from_decimal_str("5", Currency::USD).unwrap(),
            },
        }),
        tax: TaxRate::none(),
    })
    .unwrap_err();

    assert_eq!(error, PricingError::CurrencyMismatch);
}

#[test]
fn a_price_table_refuses_free_negative_and_mixed_currency_prices() {
    let discount = PeriodPrice::Discount {
        percent: Percent::ZERO,
    };
    let usd = Money::from_decimal_str("1", Currency::USD).unwrap();

    assert_eq!(
        PriceTable::new(eur("0"), eur("7"), discount, discount, discount),
        Err(PricingError::PriceNotPositive)
    );
    assert_eq!(
        PriceTable::new(eur("0.01"), eur("-7"), discount, discount, discount),
        Err(PricingError::PriceNotPositive)
    );
    assert_eq!(
        PriceTable::new(
            eur("0.01"),
            eur("7"),
            PeriodPrice::Price { amount: usd },
            discount,
            discount
        ),
        Err(PricingError::CurrencyMismatch)
    );
}

#[test]
fn custom_pricing_refuses_inverted_empty_or_partial_gib_bounds_and_negative_prices() {
    let valid = custom_pricing();
    let with_bounds = |min: Resources, max: Resources| {
        CustomPricing::new(
            *valid.unit_prices(),
            ResourceBounds { min, max },
            *valid.period_discounts(),
        )
    };
    let bounds = *valid.bounds();

    let inverted = with_bounds(bounds.max, bounds.min);
    let no_cpu = with_bounds(
        Resources {
            vcpus: 0,
            ..bounds.min
        },
        bounds.max,
    );
    let partial = with_bounds(
        Resources {
            memory_mib: 1536,
            ..bounds.min
        },
        bounds.max,
    );
    let negative = CustomPricing::new(
        UnitPrices {
            ipv4: eur("-0.50"),
            ..*valid.unit_prices()
        },
        bounds,
        PeriodDiscounts::default(),
    );

    assert_eq!(inverted, Err(PricingError::InvalidBounds));
    assert_eq!(no_cpu, Err(PricingError::InvalidBounds));
    assert_eq!(partial, Err(PricingError::InvalidBounds));
    assert_eq!(negative, Err(PricingError::PriceNegative));
}

#[test]
fn percentages_parse_with_up_to_two_decimals_from_zero_to_one_hundred() {
    for (input, basis_points) in [
        ("0", 0),
        ("19", 1900),
        ("7.5", 750),
        ("12.25", 1225),
        ("100", 10_000),
        ("100.00", 10_000),
        ("007", 700),
    ] {
        assert_eq!(
            Percent::parse(input).map(|p| p.basis_points()),
            Ok(basis_points)
        );
    }
    for input in [
        "", "-1", "100.01", "101", "1.234", ".5", "5.", "1e2", " 5", "5%", "abc", "1000",
    ] {
        assert_eq!(
            Percent::parse(input),
            Err(PricingError::InvalidPercent),
            "{input:?}"
        );
    }
}

#[test]
fn a_percentage_prints_the_shortest_decimal_that_parses_back() {
    for input in ["0", "19", "7.5", "12.25", "100", "0.05"] {
        assert_eq!(percent(input).to_decimal_string(), input);
    }
}

#[test]
fn billing_periods_parse_from_their_wire_names_only() {
    for period in BillingPeriod::ALL {
        assert_eq!(BillingPeriod::parse(period.as_str()), Ok(period));
    }
    assert_eq!(
        BillingPeriod::parse("weekly"),
        Err(PricingError::UnknownBillingPeriod)
    );
    assert_eq!(
        BillingPeriod::parse("Monthly"),
        Err(PricingError::UnknownBillingPeriod)
    );
}
