//! The printable invoice: a PDF drawn with `pdf-writer` from the invoices read model.
//!
//! Only the PDF base-14 fonts are used (Helvetica for text, Courier for amounts, so that columns
//! of numbers right-align without font metrics), so no font file is embedded; text is encoded in
//! WinAnsi (Latin-1 and the euro sign), anything else prints as `?`. The content streams are
//! written uncompressed: the document stays small, readable and searchable by tests.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};
use stratus_domain::invoice::InvoiceStatus;
use stratus_domain::{Money, MONEY_DECIMALS};
use stratus_projections::invoices::InvoiceView;

/// A4 in PDF points.
const PAGE_WIDTH: f32 = 595.0;
const PAGE_HEIGHT: f32 = 842.0;
/// Page margin on every side, in points.
const MARGIN: f32 = 50.0;
/// Body text size, in points.
const TEXT_SIZE: f32 = 10.0;
/// Distance between two lines of body text, in points.
const LEADING: f32 = 14.0;
/// Courier's advance width as a share of the font size (every glyph is 600/1000 em).
const COURIER_ADVANCE: f32 = 0.6;
/// Longest line description printed before it is cut with `...` (the description column's width
/// in 10 pt Helvetica).
const DESCRIPTION_MAX_CHARS: usize = 60;
/// Longest other text field printed (names, reasons, address lines).
const TEXT_MAX_CHARS: usize = 90;

const FONT_TEXT: Name<'static> = Name(b"F1");
const FONT_BOLD: Name<'static> = Name(b"F2");
const FONT_MONO: Name<'static> = Name(b"F3");

/// Who issues the invoice, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Seller<'a> {
    pub name: &'a str,
    /// One or more lines, separated by line breaks.
    pub address: Option<&'a str>,
    pub vat_id: Option<&'a str>,
}

/// The file name of an invoice's PDF: `invoice-2026-000042.pdf`, or `invoice-DRAFT-<id>.pdf`.
pub fn file_name(invoice: &InvoiceView) -> String {
    match &invoice.number {
        Some(number) => format!("invoice-{number}.pdf"),
        None => format!("invoice-DRAFT-{}.pdf", invoice.invoice_id),
    }
}

/// The invoice as a PDF document.
pub fn render(invoice: &InvoiceView, seller: &Seller<'_>) -> Vec<u8> {
    let mut pages = Pages::new();
    header(&mut pages, invoice, seller);
    lines(&mut pages, invoice);
    totals(&mut pages, invoice);
    status(&mut pages, invoice);
    assemble(pages.finish(), invoice)
}

/// Page contents under construction, with the vertical position of the next line.
struct Pages {
    done: Vec<Content>,
    current: Content,
    y: f32,
}

impl Pages {
    fn new() -> Self {
        Self {
            done: Vec::new(),
            current: Content::new(),
            y: PAGE_HEIGHT - MARGIN,
        }
    }

    /// Starts a new page when fewer than `height` points are left above the bottom margin.
    fn room_for(&mut self, height: f32) {
        if self.y - height < MARGIN {
            let full = std::mem::replace(&mut self.current, Content::new());
            self.done.push(full);
            self.y = PAGE_HEIGHT - MARGIN;
        }
    }

    /// Moves down by `points`.
    fn down(&mut self, points: f32) {
        self.y -= points;
    }

    fn text(&mut self, font: Name<'_>, size: f32, x: f32, text: &str) {
        let bytes = win_ansi(text);
        self.current
            .begin_text()
            .set_font(font, size)
            .next_line(x, self.y)
            .show(Str(&bytes))
            .end_text();
    }

    /// Courier text (already formatted: amounts are rendered from integer micro-units before
    /// they get here) whose right edge is `right_edge_pt` points from the page's left edge.
    fn right_aligned(&mut self, right_edge_pt: f32, text: &str) {
        let width = COURIER_ADVANCE * TEXT_SIZE * text.chars().count() as f32;
        self.text(FONT_MONO, TEXT_SIZE, right_edge_pt - width, text);
    }

    fn rule(&mut self) {
        self.current
            .set_line_width(0.5)
            .move_to(MARGIN, self.y)
            .line_to(PAGE_WIDTH - MARGIN, self.y)
            .stroke();
    }

    fn finish(mut self) -> Vec<Content> {
        self.done.push(self.current);
        self.done
    }
}

/// Page coordinates are PDF points (f32, as pdf-writer takes them); no money is ever a float here.
/// Right edge of the amount column.
const AMOUNT_COLUMN_EDGE_PT: f32 = PAGE_WIDTH - MARGIN;
/// Right edge of the unit price column.
const UNIT_PRICE_COLUMN_EDGE_PT: f32 = AMOUNT_COLUMN_EDGE_PT - 110.0;
/// Right edge of the quantity column.
const QUANTITY_COLUMN_EDGE_PT: f32 = UNIT_PRICE_COLUMN_EDGE_PT - 120.0;
/// Left edge of the right-hand block of the header.
const HEADER_RIGHT_X: f32 = 340.0;

fn header(pages: &mut Pages, invoice: &InvoiceView, seller: &Seller<'_>) {
    let top = pages.y;
    pages.text(FONT_BOLD, 16.0, MARGIN, &clip(seller.name, TEXT_MAX_CHARS));
    pages.down(LEADING + 4.0);
    for line in seller
        .address
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        pages.text(FONT_TEXT, TEXT_SIZE, MARGIN, &clip(line.trim(), 45));
        pages.down(LEADING);
    }
    if let Some(vat_id) = seller.vat_id {
        pages.text(
            FONT_TEXT,
            TEXT_SIZE,
            MARGIN,
            &format!("VAT ID: {}", clip(vat_id, 40)),
        );
        pages.down(LEADING);
    }
    let left_bottom = pages.y;

    pages.y = top;
    pages.text(FONT_BOLD, 20.0, HEADER_RIGHT_X, "INVOICE");
    pages.down(LEADING + 8.0);
    let number = invoice.number.as_deref().unwrap_or("DRAFT");
    let mut facts = vec![
        ("Number", number.to_owned()),
        ("Date", date_of(invoice.issued_at)),
        ("Created", invoice.created_at.format("%Y-%m-%d").to_string()),
        ("Invoice ID", invoice.invoice_id.to_string()),
    ];
    if let Some(order_id) = invoice.order_id {
        facts.push(("Order ID", order_id.to_string()));
    }
    facts.push(("Period", invoice.billing_period.clone()));
    for (label, value) in facts {
        pages.text(FONT_TEXT, TEXT_SIZE, HEADER_RIGHT_X, label);
        // The number stands out; ids are long and printed smaller to fit the column.
        let (font, size) = if label == "Number" {
            (FONT_BOLD, TEXT_SIZE)
        } else {
            (FONT_TEXT, 8.0)
        };
        pages.text(font, size, HEADER_RIGHT_X + 55.0, &value);
        pages.down(LEADING);
    }
    pages.y = pages.y.min(left_bottom) - LEADING;

    pages.text(FONT_BOLD, TEXT_SIZE, MARGIN, "Bill to");
    pages.down(LEADING);
    let bill_to = &invoice.bill_to;
    pages.text(
        FONT_TEXT,
        TEXT_SIZE,
        MARGIN,
        &clip(bill_to.name.as_str(), TEXT_MAX_CHARS),
    );
    pages.down(LEADING);
    pages.text(
        FONT_TEXT,
        TEXT_SIZE,
        MARGIN,
        &clip(bill_to.email.as_str(), TEXT_MAX_CHARS),
    );
    pages.down(LEADING);
    if let Some(country) = &bill_to.country {
        pages.text(FONT_TEXT, TEXT_SIZE, MARGIN, country.as_str());
        pages.down(LEADING);
    }
    pages.down(LEADING);
}

fn lines(pages: &mut Pages, invoice: &InvoiceView) {
    pages.room_for(3.0 * LEADING);
    pages.text(FONT_BOLD, TEXT_SIZE, MARGIN, "Description");
    pages.text(FONT_BOLD, TEXT_SIZE, QUANTITY_COLUMN_EDGE_PT - 20.0, "Qty");
    pages.text(
        FONT_BOLD,
        TEXT_SIZE,
        UNIT_PRICE_COLUMN_EDGE_PT - 50.0,
        "Unit price",
    );
    pages.text(FONT_BOLD, TEXT_SIZE, AMOUNT_COLUMN_EDGE_PT - 40.0, "Amount");
    pages.down(5.0);
    pages.rule();
    pages.down(LEADING);
    for line in &invoice.lines {
        pages.room_for(LEADING);
        pages.text(
            FONT_TEXT,
            TEXT_SIZE,
            MARGIN,
            &clip(&line.description, DESCRIPTION_MAX_CHARS),
        );
        pages.right_aligned(QUANTITY_COLUMN_EDGE_PT, &line.quantity.to_string());
        pages.right_aligned(UNIT_PRICE_COLUMN_EDGE_PT, &exact(line.unit_price));
        pages.right_aligned(AMOUNT_COLUMN_EDGE_PT, &minor(line.amount));
        pages.down(LEADING);
    }
    pages.down(-LEADING + 5.0);
    pages.rule();
    pages.down(LEADING + 4.0);
}

fn totals(pages: &mut Pages, invoice: &InvoiceView) {
    let label_x = UNIT_PRICE_COLUMN_EDGE_PT - 120.0;
    let discount = match &invoice.discount_code {
        Some(code) => format!("Discount ({})", clip(code, 24)),
        None => "Discount".to_owned(),
    };
    let vat = match &invoice.tax_country {
        Some(country) => format!("VAT {} % ({country})", invoice.tax_rate.to_decimal_string()),
        None => format!("VAT {} %", invoice.tax_rate.to_decimal_string()),
    };
    let negated_discount = invoice.discount.checked_neg().unwrap_or(invoice.discount);
    let rows = [
        ("Subtotal".to_owned(), invoice.subtotal),
        (discount, negated_discount),
        ("Net".to_owned(), invoice.net),
        (vat, invoice.tax),
    ];
    for (label, amount) in rows {
        pages.room_for(LEADING);
        pages.text(FONT_TEXT, TEXT_SIZE, label_x, &label);
        pages.right_aligned(AMOUNT_COLUMN_EDGE_PT, &minor(amount));
        pages.down(LEADING);
    }
    pages.room_for(LEADING + 4.0);
    pages.down(4.0);
    pages.text(FONT_BOLD, 12.0, label_x, "Total");
    pages.right_aligned(AMOUNT_COLUMN_EDGE_PT, &minor(invoice.total));
    pages.down(2.0 * LEADING);
}

fn status(pages: &mut Pages, invoice: &InvoiceView) {
    pages.room_for(4.0 * LEADING);
    let (stamp, details) = match invoice.status {
        InvoiceStatus::Draft => (
            "DRAFT",
            vec!["Not yet issued: this document has no invoice number.".to_owned()],
        ),
        InvoiceStatus::Issued => (
            "ISSUED",
            vec![format!("Amount due: {}", minor(invoice.total))],
        ),
        InvoiceStatus::Paid => (
            "PAID",
            vec![
                format!("Paid on {}", date_of(invoice.paid_at)),
                format!(
                    "Payment reference: {}",
                    clip(invoice.payment_reference.as_deref().unwrap_or("-"), 60)
                ),
            ],
        ),
        InvoiceStatus::Void => (
            "VOID",
            vec![
                format!("Voided on {}", date_of(invoice.voided_at)),
                format!(
                    "Reason: {}",
                    clip(
                        invoice.void_reason.as_deref().unwrap_or("-"),
                        TEXT_MAX_CHARS
                    )
                ),
            ],
        ),
    };
    pages.text(FONT_BOLD, 18.0, MARGIN, stamp);
    pages.down(LEADING + 6.0);
    for detail in details {
        pages.text(FONT_TEXT, TEXT_SIZE, MARGIN, &detail);
        pages.down(LEADING);
    }
    pages.down(LEADING);
    pages.room_for(LEADING);
    pages.text(
        FONT_TEXT,
        8.0,
        MARGIN,
        &format!("All amounts in {}.", invoice.currency.code()),
    );
}

/// Writes the catalog, pages, fonts and document information around the page contents.
fn assemble(contents: Vec<Content>, invoice: &InvoiceView) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let info_id = Ref::new(3);
    let fonts = [
        (FONT_TEXT, Ref::new(4), b"Helvetica".as_slice()),
        (FONT_BOLD, Ref::new(5), b"Helvetica-Bold".as_slice()),
        (FONT_MONO, Ref::new(6), b"Courier".as_slice()),
    ];
    let first_page = 7;
    // Each page takes two ids: the page and its content stream.
    let page_ids: Vec<(Ref, Ref)> = (0..contents.len())
        .map(|i| {
            let base = first_page + 2 * i32::try_from(i).unwrap_or(i32::MAX / 4);
            (Ref::new(base), Ref::new(base + 1))
        })
        .collect();

    pdf.catalog(catalog_id).pages(tree_id);
    let count = i32::try_from(page_ids.len()).unwrap_or(i32::MAX);
    pdf.pages(tree_id)
        .kids(page_ids.iter().map(|(page, _)| *page))
        .count(count);
    for ((page_id, content_id), content) in page_ids.iter().zip(contents) {
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE_WIDTH, PAGE_HEIGHT))
            .parent(tree_id)
            .contents(*content_id);
        let mut resources = page.resources();
        let mut font_map = resources.fonts();
        for (name, id, _) in &fonts {
            font_map.pair(*name, *id);
        }
        font_map.finish();
        resources.finish();
        page.finish();
        pdf.stream(*content_id, &content.finish());
    }
    for (_, id, base_font) in fonts {
        pdf.type1_font(id)
            .base_font(Name(base_font))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
    }
    let title = match &invoice.number {
        Some(number) => format!("Invoice {number}"),
        None => format!("Draft invoice {}", invoice.invoice_id),
    };
    pdf.document_info(info_id)
        .title(TextStr(&title))
        .producer(TextStr("Stratus"));
    pdf.finish()
}

fn date_of(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// An amount with the currency's minor-unit decimals (`21.36 EUR`).
fn minor(money: Money) -> String {
    decimals(money, usize::from(money.currency().minor_units()))
}

/// A unit price: at least the minor unit, more decimals only where it is finer (`0.00274 EUR`).
fn exact(money: Money) -> String {
    let wire = money.to_decimal_string();
    let fraction = wire.split_once('.').map(|(_, f)| f).unwrap_or("");
    let significant = fraction.trim_end_matches('0').len();
    decimals(
        money,
        significant.max(usize::from(money.currency().minor_units())),
    )
}

/// `money` with `places` decimals (at most six), cut from its exact decimal form.
fn decimals(money: Money, places: usize) -> String {
    let wire = money.to_decimal_string();
    let (whole, fraction) = wire.split_once('.').unwrap_or((wire.as_str(), ""));
    let places = places.min(usize::from(MONEY_DECIMALS));
    let number = if places == 0 {
        whole.to_owned()
    } else {
        format!("{whole}.{}", &fraction[..places.min(fraction.len())])
    };
    format!("{number} {}", money.currency().code())
}

/// At most `max` characters, cut with `...`.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max.saturating_sub(3)).collect();
        format!("{kept}...")
    }
}

/// Text in WinAnsiEncoding: ASCII and Latin-1 as themselves, the euro sign and typographic
/// punctuation at their WinAnsi codes, anything else (and control characters) as `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c as u8,
            '\u{a0}'..='\u{ff}' => u8::try_from(u32::from(c)).unwrap_or(b'?'),
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use stratus_domain::Currency;

    fn eur(amount: &str) -> Money {
        Money::from_decimal_str(amount, Currency::EUR).unwrap()
    }

    #[test]
    fn amounts_print_in_minor_units_and_unit_prices_as_fine_as_they_are() {
        assert_eq!(minor(eur("21.36")), "21.36 EUR");
        assert_eq!(minor(eur("-2")), "-2.00 EUR");
        assert_eq!(exact(eur("7")), "7.00 EUR");
        assert_eq!(exact(eur("0.00274")), "0.00274 EUR");
        assert_eq!(
            minor(Money::from_decimal_str("1500", Currency::JPY).unwrap()),
            "1500 JPY"
        );
    }

    fn view(status: InvoiceStatus, number: Option<&str>) -> InvoiceView {
        use stratus_domain::invoice::BillTo;
        use stratus_domain::pricing::{Percent, QuoteLine};
        use stratus_domain::{Country, Email, PersonName};
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T09:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        InvoiceView {
            invoice_id: uuid::Uuid::nil(),
            number: number.map(str::to_owned),
            account_id: uuid::Uuid::nil(),
            order_id: None,
            status,
            currency: Currency::EUR,
            billing_period: "hourly".to_owned(),
            lines: vec![QuoteLine {
                description: "vCPU, first hour".to_owned(),
                quantity: 2,
                unit_price: eur("0.00274"),
                amount: eur("0.01"),
            }],
            subtotal: eur("0.01"),
            discount: eur("0"),
            discount_code: None,
            net: eur("0.01"),
            tax_country: Some("DE".to_owned()),
            tax_rate: Percent::parse("19").unwrap(),
            tax: eur("0"),
            total: eur("0.01"),
            bill_to: BillTo {
                name: PersonName::parse("Jürgen Müller").unwrap(),
                email: Email::parse("jm@example.com").unwrap(),
                country: Some(Country::parse("DE").unwrap()),
            },
            payment_reference: Some("order:abc".to_owned()),
            void_reason: None,
            created_at: at,
            issued_at: number.map(|_| at),
            paid_at: Some(at),
            voided_at: None,
            updated_at: at,
            position: 1,
        }
    }

    const SELLER: Seller<'static> = Seller {
        name: "Example Hosting GmbH",
        address: Some("Hauptstr. 1\n10115 Berlin"),
        vat_id: Some("DE123456789"),
    };

    #[test]
    fn a_draft_says_draft_in_the_document_and_its_file_name() {
        let draft = view(InvoiceStatus::Draft, None);

        let pdf = render(&draft, &SELLER);
        let text = String::from_utf8_lossy(&pdf);

        assert!(pdf.starts_with(b"%PDF-"));
        assert!(text.contains("(DRAFT)"));
        assert!(text.contains("(Example Hosting GmbH)") && text.contains("(10115 Berlin)"));
        assert!(text.contains("(VAT ID: DE123456789)"));
        assert!(text.contains("(0.00274 EUR)"), "the exact unit price");
        assert_eq!(
            file_name(&draft),
            "invoice-DRAFT-00000000-0000-0000-0000-000000000000.pdf"
        );
    }

    #[test]
    fn a_paid_invoice_shows_its_number_the_vat_and_the_payment() {
        let paid = view(InvoiceStatus::Paid, Some("2026-000042"));

        let pdf = render(&paid, &SELLER);
        let text = String::from_utf8_lossy(&pdf);

        assert!(text.contains("(2026-000042)"));
        assert!(text.contains("(PAID)"));
        assert!(text.contains("(Payment reference: order:abc)"));
        assert!(text.contains("(VAT 19 % (DE))"));
        assert!(text.contains("/Title (Invoice 2026-000042)"));
        assert_eq!(file_name(&paid), "invoice-2026-000042.pdf");
    }

    #[test]
    fn many_lines_flow_onto_further_pages() {
        let mut long = view(InvoiceStatus::Issued, Some("2026-000043"));
        long.lines = (0..120).map(|_| long.lines[0].clone()).collect();

        let pdf = render(&long, &SELLER);
        let text = String::from_utf8_lossy(&pdf);

        assert!(text.contains("/Count 3"), "120 lines take three pages");
    }

    #[test]
    fn text_is_encoded_in_win_ansi_with_a_question_mark_for_the_rest() {
        assert_eq!(win_ansi("Müller €5"), b"M\xfcller \x805".to_vec());
        assert_eq!(win_ansi("日本\n"), b"???".to_vec());
    }

    #[test]
    fn long_text_is_clipped_with_an_ellipsis() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("a much longer text", 10), "a much ...");
    }
}
