//! The patient, its wire forms and their validation.

use chrono::{NaiveDate, Utc};
use pulsetrack_common::{
    FieldError, openapi,
    validate::{self, Validator},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

pub const NAME_MAX: usize = 200;
pub const ADDRESS_MAX: usize = 500;
pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;
const EARLIEST_BIRTH: NaiveDate = match NaiveDate::from_ymd_opt(1900, 1, 1) {
    Some(d) => d,
    None => panic!("valid date"),
};

/// A patient as stored and as returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub address: String,
    #[schema(value_type = String, format = Date, example = "1990-05-17")]
    pub date_of_birth: NaiveDate,
    #[schema(value_type = String, format = Date, example = "2026-11-27")]
    pub registered_date: NaiveDate,
}

/// Body of `POST /patients` and `PUT /patients/{id}`. Every field is optional at the
/// JSON level so that validation can name each missing one; unknown fields are ignored.
/// Documented as the create's body: every field required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatientRequest {
    #[schema(schema_with = openapi::text_200, required = true, example = "Ada Lovelace")]
    pub name: Option<String>,
    #[schema(schema_with = openapi::email, required = true)]
    pub email: Option<String>,
    #[schema(schema_with = openapi::text_500, required = true, example = "12 St James's Square, London")]
    pub address: Option<String>,
    /// ISO-8601 date, from 1900-01-01 to today; also accepted as `dateofBirth` (the
    /// seed's spelling).
    #[serde(alias = "dateofBirth")]
    #[schema(value_type = String, format = Date, required = true, example = "1990-05-17")]
    pub date_of_birth: Option<String>,
    /// ISO-8601 date, not before `dateOfBirth`, at most one day after today (UTC).
    #[schema(value_type = String, format = Date, required = true, example = "2026-11-27")]
    pub registered_date: Option<String>,
}

/// Body of `PUT /patients/{id}` (documentation): as [`PatientRequest`], but
/// `registeredDate` may be left out to keep the stored one.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PatientUpdate {
    #[schema(schema_with = openapi::text_200, example = "Ada Lovelace")]
    name: String,
    #[schema(schema_with = openapi::email)]
    email: String,
    #[schema(schema_with = openapi::text_500, example = "12 St James's Square, London")]
    address: String,
    /// ISO-8601 date, from 1900-01-01 to today.
    #[schema(value_type = String, format = Date, example = "1990-05-17")]
    date_of_birth: String,
    /// ISO-8601 date, not before `dateOfBirth`, at most one day after today (UTC);
    /// left out: the stored date is kept.
    #[schema(value_type = Option<String>, format = Date, example = "2026-11-27")]
    registered_date: Option<String>,
}

/// A validated create or update.
#[derive(Debug, Clone)]
pub struct PatientInput {
    pub name: String,
    pub email: String,
    pub address: String,
    pub date_of_birth: NaiveDate,
    /// Always `Some` on create; `None` on update keeps the stored date.
    pub registered_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

fn date(value: Option<String>) -> Result<NaiveDate, String> {
    let raw = validate::required(value)?;
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "must be an ISO-8601 date (YYYY-MM-DD)".to_string())
}

fn birth_date(value: Option<String>, today: NaiveDate) -> Result<NaiveDate, String> {
    let d = date(value)?;
    if d > today {
        Err("must not be in the future".into())
    } else if d < EARLIEST_BIRTH {
        Err(format!("must not be before {EARLIEST_BIRTH}"))
    } else {
        Ok(d)
    }
}

impl PatientRequest {
    pub fn validate(self, mode: Mode) -> Result<PatientInput, Vec<FieldError>> {
        self.validate_at(mode, Utc::now().date_naive())
    }

    fn validate_at(self, mode: Mode, today: NaiveDate) -> Result<PatientInput, Vec<FieldError>> {
        let mut v = Validator::new();
        let name = v.field("name", validate::text(self.name, NAME_MAX));
        let email = v.field("email", validate::email(self.email));
        let address = v.field("address", validate::text(self.address, ADDRESS_MAX));
        let date_of_birth = v.field("dateOfBirth", birth_date(self.date_of_birth, today));
        let registered_date = match (mode, self.registered_date) {
            (Mode::Update, None) => Some(None),
            // One day of slack for clients ahead of UTC.
            (_, value) => v
                .field(
                    "registeredDate",
                    date(value).and_then(|d| {
                        if d > today + chrono::Days::new(1) { Err("must not be in the future".into()) } else { Ok(d) }
                    }),
                )
                .map(Some),
        };
        if let (Some(dob), Some(Some(reg))) = (date_of_birth, registered_date)
            && reg < dob
        {
            v.field::<()>("registeredDate", Err("must not be before dateOfBirth".into()));
        }
        v.finish()?;
        match (name, email, address, date_of_birth, registered_date) {
            (Some(name), Some(email), Some(address), Some(date_of_birth), Some(registered_date)) => {
                Ok(PatientInput { name, email, address, date_of_birth, registered_date })
            }
            // finish() returned Ok, so every field is present.
            _ => Err(vec![FieldError::new("body", "invalid patient")]),
        }
    }
}

/// Query of `GET /patients`. Raw strings, so that a bad value is a 400 naming it.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Zero-based page number (default 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 1000000)]
    pub page: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub size: Option<String>,
    /// Case-insensitive substring of the name or email.
    #[param(schema_with = openapi::search_term)]
    pub search: Option<String>,
    /// The `nextCursor` of the previous page: the page after it, found through the
    /// index however deep (a numbered page reads and skips every row before it), and
    /// without the totals. Not with `page`.
    #[param(value_type = Option<Uuid>)]
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListParams {
    pub page: i64,
    pub size: i64,
    pub search: Option<String>,
    /// A keyset page: the patients after this id.
    pub after: Option<Uuid>,
}

impl ListQuery {
    pub fn validate(self) -> Result<ListParams, Vec<FieldError>> {
        let mut v = Validator::new();
        let numbered = self.page.is_some();
        let page = v.field(
            "page",
            self.page.map_or(Ok(0), |p| match p.trim().parse::<i64>() {
                Ok(n) if (0..=1_000_000).contains(&n) => Ok(n),
                _ => Err("must be an integer from 0 to 1000000".to_string()),
            }),
        );
        let size = v.field(
            "size",
            self.size.map_or(Ok(DEFAULT_PAGE_SIZE), |s| match s.trim().parse::<i64>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
                _ => Err(format!("must be an integer from 1 to {MAX_PAGE_SIZE}")),
            }),
        );
        let search = v.field(
            "search",
            match self.search.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
                Some(s) if s.chars().count() > 200 => Err("must be at most 200 characters".to_string()),
                Some(s) => validate::plain(&s).map(|()| Some(s)),
                None => Ok(None),
            },
        );
        let after = v.field(
            "after",
            self.after.map_or(Ok(None), |a| match Uuid::parse_str(a.trim()) {
                Ok(_) if numbered => Err("cannot be combined with page".to_string()),
                Ok(id) => Ok(Some(id)),
                Err(_) => Err("must be a UUID (a nextCursor)".to_string()),
            }),
        );
        v.finish()?;
        Ok(ListParams {
            page: page.unwrap_or(0),
            size: size.unwrap_or(DEFAULT_PAGE_SIZE),
            search: search.flatten(),
            after: after.flatten(),
        })
    }
}

/// One page of patients. A numbered page (`page=`) has its number and the totals; a
/// keyset page (`after=`) has neither, and costs the same however deep it is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatientPage {
    pub content: Vec<Patient>,
    pub size: i64,
    /// The `after` of the next page; null on the last one.
    pub next_cursor: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_elements: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).expect("valid")
    }

    fn full() -> PatientRequest {
        PatientRequest {
            name: Some(" Ada ".into()),
            email: Some("Ada@Example.com".into()),
            address: Some("London".into()),
            date_of_birth: Some("1990-05-17".into()),
            registered_date: Some("2026-01-01".into()),
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn valid_create_is_normalised() {
        let input = full().validate_at(Mode::Create, today()).expect("valid");
        assert_eq!((input.name.as_str(), input.email.as_str()), ("Ada", "ada@example.com"));
        assert_eq!(input.registered_date, NaiveDate::from_ymd_opt(2026, 1, 1));
    }

    #[test]
    fn registered_date_is_required_on_create_only() {
        let req = || PatientRequest { registered_date: None, ..full() };
        assert_eq!(fields(req().validate_at(Mode::Create, today()).unwrap_err()), ["registeredDate"]);
        assert_eq!(req().validate_at(Mode::Update, today()).expect("valid").registered_date, None);
    }

    #[test]
    fn future_or_malformed_birth_dates_are_rejected() {
        for bad in ["2026-11-28", "17/05/1990", "1899-12-31", "1990-02-30"] {
            let req = PatientRequest { date_of_birth: Some(bad.into()), ..full() };
            assert_eq!(fields(req.validate_at(Mode::Create, today()).unwrap_err()), ["dateOfBirth"], "{bad}");
        }
        let today_is_fine = PatientRequest {
            date_of_birth: Some("2026-11-27".into()),
            registered_date: Some("2026-11-27".into()),
            ..full()
        };
        assert!(today_is_fine.validate_at(Mode::Create, today()).is_ok());
    }

    #[test]
    fn every_missing_field_is_named() {
        let errors = PatientRequest::default().validate_at(Mode::Create, today()).unwrap_err();
        assert_eq!(fields(errors), ["name", "email", "address", "dateOfBirth", "registeredDate"]);
    }

    #[test]
    fn seed_spelling_of_date_of_birth_is_accepted() {
        let req: PatientRequest = serde_json::from_str(r#"{"dateofBirth": "1990-05-17"}"#).expect("parses");
        assert_eq!(req.date_of_birth.as_deref(), Some("1990-05-17"));
    }

    #[test]
    fn list_bounds() {
        let q = |page: &str, size: &str| {
            ListQuery { page: Some(page.into()), size: Some(size.into()), ..ListQuery::default() }.validate()
        };
        assert_eq!(q("0", "100").expect("valid").size, 100);
        assert_eq!(fields(q("-1", "101").unwrap_err()), ["page", "size"]);
        assert_eq!(fields(q("x", "0").unwrap_err()), ["page", "size"]);
        assert_eq!(
            ListQuery::default().validate().expect("valid"),
            ListParams { page: 0, size: 20, search: None, after: None }
        );
    }

    #[test]
    fn a_keyset_page_takes_a_uuid_and_no_page_number() {
        let id = Uuid::now_v7();
        let after = |a: &str, page: Option<&str>| {
            ListQuery { after: Some(a.into()), page: page.map(Into::into), ..ListQuery::default() }.validate()
        };
        assert_eq!(after(&id.to_string(), None).expect("valid").after, Some(id));
        assert_eq!(fields(after("not-a-cursor", None).unwrap_err()), ["after"]);
        assert_eq!(fields(after(&id.to_string(), Some("0")).unwrap_err()), ["after"]);
    }
}
