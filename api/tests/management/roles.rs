//! Roles: who may do what in an organization.

use pulse_testkit::management::ManagementStack as Stack;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn roles_decide_who_may_do_what() {
    let stack = Stack::start(&[]).await;
    let owner = stack.register("owner@example.com").await;
    let other = stack.register("member@example.com").await;
    let org = owner.organization;
    let project = stack.project(&owner, json!({})).await;

    let member = stack
        .post(
            &format!("/v1/organizations/{org}/members"),
            Some(&owner.access),
            json!({"email": "member@example.com", "role": "member"}),
        )
        .await
        .expect(201, "add member");
    assert_eq!(member["role"], "member");
    let again = stack
        .post(
            &format!("/v1/organizations/{org}/members"),
            Some(&owner.access),
            json!({"email": "member@example.com", "role": "admin"}),
        )
        .await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "ALREADY_MEMBER"));

    // A member reads but does not change.
    stack
        .get(&format!("/v1/projects/{project}"), &other.access)
        .await
        .expect(200, "member reads");
    stack
        .get(&format!("/v1/projects/{project}/api-keys"), &other.access)
        .await
        .expect(200, "member lists keys");
    let forbidden = [
        stack
            .post(
                &format!("/v1/projects/{project}/api-keys"),
                Some(&other.access),
                json!({}),
            )
            .await,
        stack
            .call(
                Method::PATCH,
                &format!("/v1/organizations/{org}"),
                Some(&other.access),
                Some(json!({"name": "x"})),
            )
            .await,
        stack
            .call(
                Method::DELETE,
                &format!("/v1/projects/{project}"),
                Some(&other.access),
                None,
            )
            .await,
        stack
            .post(
                "/v1/projects",
                Some(&other.access),
                json!({"organization_id": org, "name": "nope"}),
            )
            .await,
        stack
            .call(
                Method::DELETE,
                &format!("/v1/organizations/{org}/members/{}", owner.id),
                Some(&other.access),
                None,
            )
            .await,
    ];
    for answer in forbidden {
        assert_eq!(
            (answer.status.as_u16(), answer.code()),
            (403, "FORBIDDEN"),
            "{}",
            answer.body
        );
    }

    // An admin manages keys but cannot touch the owner role.
    stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", other.id),
            Some(&owner.access),
            Some(json!({"role": "admin"})),
        )
        .await
        .expect(200, "promote to admin");
    stack.key(&other, project, json!({})).await;
    let grant_owner = stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", other.id),
            Some(&other.access),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(grant_owner.status, StatusCode::FORBIDDEN);

    // The last owner can neither leave nor be demoted.
    let leave = stack
        .call(
            Method::DELETE,
            &format!("/v1/organizations/{org}/members/{}", owner.id),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!((leave.status.as_u16(), leave.code()), (409, "LAST_OWNER"));
    let demote = stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", owner.id),
            Some(&owner.access),
            Some(json!({"role": "member"})),
        )
        .await;
    assert_eq!((demote.status.as_u16(), demote.code()), (409, "LAST_OWNER"));
    let delete_account = stack
        .call(Method::DELETE, "/v1/users/me", Some(&owner.access), None)
        .await;
    assert_eq!(
        (delete_account.status.as_u16(), delete_account.code()),
        (409, "LAST_OWNER")
    );

    // With a second owner, the first may leave.
    stack
        .call(
            Method::PATCH,
            &format!("/v1/organizations/{org}/members/{}", other.id),
            Some(&owner.access),
            Some(json!({"role": "owner"})),
        )
        .await
        .expect(200, "second owner");
    stack
        .call(
            Method::DELETE,
            &format!("/v1/organizations/{org}/members/{}", owner.id),
            Some(&owner.access),
            None,
        )
        .await
        .expect(204, "leave");
    let gone = stack.get(&format!("/v1/projects/{project}"), &owner.access).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "no longer a member");
    let left = stack.get(&format!("/v1/organizations/{org}"), &owner.access).await;
    assert_eq!(
        left.status,
        StatusCode::NOT_FOUND,
        "an organization one left is not found"
    );
    let members = stack
        .get(&format!("/v1/organizations/{org}/members"), &other.access)
        .await
        .expect(200, "members");
    assert_eq!(members.as_array().expect("members").len(), 1);
}
