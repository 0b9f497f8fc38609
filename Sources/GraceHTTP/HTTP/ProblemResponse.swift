/// A ready error response, so route code can `switch` on a parse result.
package struct ProblemResponse: Error {
    package let response: HTTPResponse

    package init(response: HTTPResponse) {
        self.response = response
    }
}
