//! PulseTrack's protobuf contracts, generated at build time from `proto/*.proto`.

/// `billing` package: the `BillingService` gRPC contract.
pub mod billing {
    tonic::include_proto!("billing");
}

/// `patient.events` package: the `PatientEvent` published to Kafka.
pub mod patient_events {
    tonic::include_proto!("patient.events");
}

/// Encoded `FileDescriptorSet` of all contracts, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pulsetrack_descriptor.bin"));

/// Event types carried in `PatientEvent.event_type`.
pub mod event_type {
    pub const PATIENT_CREATED: &str = "PATIENT_CREATED";
    pub const PATIENT_UPDATED: &str = "PATIENT_UPDATED";
    pub const PATIENT_DELETED: &str = "PATIENT_DELETED";
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn patient_event_round_trips_and_keeps_seed_field_numbers() {
        let event = patient_events::PatientEvent {
            patient_id: "p1".into(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            event_type: event_type::PATIENT_CREATED.into(),
            event_id: "e1".into(),
            occurred_at: Some(prost_types::Timestamp { seconds: 1, nanos: 2 }),
        };
        let bytes = event.encode_to_vec();
        // Field 1 (patientId), wire type 2 (length-delimited): tag byte 0x0a.
        assert_eq!(bytes[0], 0x0a);
        let decoded = patient_events::PatientEvent::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(decoded, event);
    }

    #[test]
    fn descriptor_set_contains_both_packages() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("valid descriptor set");
        let packages: Vec<_> = fds.file.iter().filter_map(|f| f.package.clone()).collect();
        assert!(packages.contains(&"billing".to_string()));
        assert!(packages.contains(&"patient.events".to_string()));
    }
}
